"""The patch bus over Redis Streams: one leader writes, every node reads.

The leader's write is one Lua script (Centrifugo's `broker_history_add_stream.lua` is the
model): check the fence, check the seq follows the line's head, XADD the patch with
`MAXLEN ~`, move the head, and — when given — store the snapshot and acknowledge the
intake events the patch applied. All or nothing, so a leader paused past its lease
writes nothing once it wakes, and an event is acknowledged exactly when its patch is out.

Stream entry ids are '<pos>-0', pos counting entries; within an epoch the seq follows pos
one for one, so the entries after (epoch, seq) are found with one XRANGE.

Every node, the leader too, runs one XREAD BLOCK loop per scope that feeds its local
subscribers and a bounded local history; it reconnects on its own (pub/sub would lose
what is published meanwhile; a stream does not) and finds its place again after a
Redis restart. The leader also hands its own patches to its subscribers at once when
they follow the last one delivered; the reader skips them later.

The client must be made with decode_responses=False: payloads are bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from wallboard.audience import Audience
from wallboard.bus import Published, held_then_new
from wallboard.cluster.keys import INTAKE_GROUP, Keys

log = logging.getLogger("wallboard.cluster.bus")

DOWN = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)

# KEYS: lease, meta, patches, snapshot, intake.
# ARGV: token, fence, epoch, seq, maxlen, n_fields, n_parts, n_acks, group,
#       then n_fields (field, payload) pairs (one per audience, and 'x' for the engine's own),
#       n_parts (part, bytes) pairs, n_acks intake ids.
# n_fields = 0: no patch, only the snapshot (and acks) at (epoch, seq).
# -> {'ok', pos} | {'dup', pos} (this very write was done already: a retry) |
#    {'fenced', holder} (the lease is not `token`) | {'gap', last seq of the line}
PUBLISH = """
local token, fence, epoch, seq = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local holder = redis.call('GET', KEYS[1])
if holder ~= token then
  return {'fenced', holder or ''}
end
local head = redis.call('HMGET', KEYS[2], 'e', 's', 'f', 'p')
if head[3] and tonumber(head[3]) > fence then
  return {'fenced', holder}
end
local same = head[1] == epoch
local last = head[2] and tonumber(head[2])
local n_fields, n_parts, n_acks = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local pos = tonumber(head[4] or '0')
if n_fields > 0 then
  if same and seq == last and tonumber(head[3]) == fence then
    return {'dup', pos}
  end
  if same and seq ~= last + 1 then
    return {'gap', last}
  end
  pos = redis.call('HINCRBY', KEYS[2], 'p', 1)
  local entry = {'e', epoch, 's', seq, 'f', fence}
  for i = 10, 9 + 2 * n_fields do
    entry[#entry + 1] = ARGV[i]
  end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], pos .. '-0', unpack(entry))
elseif same and seq ~= last then
  return {'gap', last}
end
redis.call('HSET', KEYS[2], 'e', epoch, 's', seq, 'f', fence)
local at = 10 + 2 * n_fields
if n_parts > 0 then
  redis.call('DEL', KEYS[4])
  local snap = {'e', epoch, 's', seq, 'f', fence}
  for i = at, at + 2 * n_parts - 1 do
    snap[#snap + 1] = ARGV[i]
  end
  redis.call('HSET', KEYS[4], unpack(snap))
end
at = at + 2 * n_parts
if n_acks > 0 then
  local ids = {}
  for i = at, at + n_acks - 1 do
    ids[#ids + 1] = ARGV[i]
  end
  redis.call('XACK', KEYS[5], ARGV[9], unpack(ids))
  redis.call('XDEL', KEYS[5], unpack(ids))
end
return {'ok', pos}
"""

# KEYS: meta, patches. ARGV: epoch, seq, limit.
# -> the entries after `seq` of `epoch` (XRANGE form), {} when seq is the head;
#    nil when they are not all held (another epoch, trimmed, ahead of the head, > limit).
SINCE = """
local head = redis.call('HMGET', KEYS[1], 'e', 's', 'p')
if head[1] ~= ARGV[1] or not head[2] then
  return nil
end
local last, pos, seq = tonumber(head[2]), tonumber(head[3] or '0'), tonumber(ARGV[2])
if seq > last or last - seq > tonumber(ARGV[3]) then
  return nil
end
if seq == last then
  return {}
end
local first = pos - (last - seq) + 1
if first < 1 then
  return nil
end
local entries = redis.call('XRANGE', KEYS[2], first .. '-0', '+', 'COUNT', last - seq)
if #entries ~= last - seq or entries[1][1] ~= first .. '-0' then
  return nil
end
local fields = entries[1][2]
if fields[2] ~= ARGV[1] or tonumber(fields[4]) ~= seq + 1 then
  return nil
end
return entries
"""


# KEYS: lease, meta. ARGV: token, heard. -> 1 | 0 (not the lease's holder)
HEARD = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[2], 'h', ARGV[2])
return 1
"""


class Fence(Protocol):
    """What a fenced write needs of the leadership (`lease.Leadership`)."""

    @property
    def token(self) -> str | None: ...

    @property
    def fence(self) -> int | None: ...

    def demote(self, reason: str) -> None: ...


class Fenced(Exception):
    """Redis refused the write: this node does not hold the lease (any more)."""


class SeqGap(Exception):
    """The seq does not follow the line's head in Redis; `last` is the head's seq."""

    def __init__(self, last: int) -> None:
        super().__init__(f"the line is at seq {last}")
        self.last = last


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The state at (epoch, seq), as parts the engine names (e.g. one per audience, and its own)."""

    epoch: str
    seq: int
    parts: Mapping[str, bytes]
    fence: int = 0


def decode_entry(fields: Mapping[bytes, bytes]) -> Published:
    payloads: dict[Audience, bytes] = {}
    for name, value in fields.items():
        if name not in (b"e", b"s", b"f", b"x"):
            with contextlib.suppress(ValueError):  # an audience this version does not know
                payloads[Audience(name.decode())] = value
    return Published(fields[b"e"].decode(), int(fields[b"s"]), payloads)


def _pairs(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _pos(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


class RedisBus:
    """The PatchBus of one scope over Redis. `start()` runs the reader; `publish` needs the lease."""

    def __init__(self, redis: Redis, scope: str, leadership: Fence, *, history: int = 1024,
                 maxlen: int = 10_000, block_ms: int = 2000,
                 on_connection: Callable[[bool], None] | None = None) -> None:
        self.keys = Keys(scope)
        self.epoch = ""
        self.connected = False
        self.maxlen = maxlen
        self._redis = redis
        self._leadership = leadership
        self._history: deque[Published] = deque(maxlen=history)
        self._queues: set[asyncio.Queue[Published]] = set()
        self._seq = -1
        self._last_id: bytes | None = None
        self._last_read: tuple[str, int] | None = None  # the entry at _last_id
        self._history_size = history
        self._block_ms = block_ms
        self._on_connection = on_connection
        self._publish = redis.register_script(PUBLISH)
        self._since = redis.register_script(SINCE)
        self._heard = redis.register_script(HEARD)
        self._task: asyncio.Task[None] | None = None
        self._started = asyncio.Event()

    @property
    def seq(self) -> int:
        """The last seq delivered here (-1: none yet)."""
        return self._seq

    # -- writing (the leader) --

    async def publish(self, item: Published, *, snapshot: Mapping[str, bytes] | None = None,
                      acks: Iterable[str | bytes] = (), internal: bytes | None = None) -> None:
        """Write `item` (with the snapshot at its seq, and acknowledging intake `acks`) in one script.

        `internal`: the engine's own form of the patch, for a next leader to rebuild its
        state from (`replay_async`), when the supervisors' payload leaves something out."""
        fields = [(a.value, p) for a, p in item.payloads.items()]
        if internal is not None:
            fields.append(("x", internal))
        await self._write(item.epoch, item.seq, fields, snapshot, acks)
        if item.epoch == self.epoch and item.seq == self._seq + 1:
            self._deliver(item)

    async def save_snapshot(self, epoch: str, seq: int, parts: Mapping[str, bytes],
                            acks: Iterable[str | bytes] = ()) -> None:
        """The snapshot at the head (or the start of a new epoch's line at `seq`), fenced like a patch."""
        if not parts:
            raise ValueError("a snapshot needs at least one part")
        await self._write(epoch, seq, [], parts, acks)

    async def _write(self, epoch: str, seq: int, fields: list[tuple[str, bytes]],
                     parts: Mapping[str, bytes] | None, acks: Iterable[str | bytes]) -> int:
        token, fence = self._leadership.token, self._leadership.fence
        if token is None or fence is None:
            raise Fenced(f"scope {self.keys.scope}: this node does not lead")
        ack_ids = list(acks)
        args: list[Any] = [token, fence, epoch, seq, self.maxlen, len(fields), len(parts or {}), len(ack_ids),
                           INTAKE_GROUP]
        for name, payload in fields:
            args += (name, payload)
        for name, part in (parts or {}).items():
            args += (f"p:{name}", part)
        args += ack_ids
        keys = [self.keys.lease, self.keys.meta, self.keys.patches, self.keys.snapshot, self.keys.intake]
        answer = await self._publish(keys=keys, args=args)
        kind = answer[0].decode()
        if kind == "fenced":
            holder = answer[1].decode() or "nobody"
            self._leadership.demote(f"Redis refused the write of seq {seq}: the lease is {holder!r}'s")
            raise Fenced(f"scope {self.keys.scope}: the lease is {holder!r}'s, not {token!r}")
        if kind == "gap":
            raise SeqGap(int(answer[1]))
        return int(answer[1])

    async def say_heard(self, heard: bytes) -> bool:
        """The leader's word on when each source last answered (polls that change nothing
        publish no patch), for every node's heartbeats; fenced like a patch."""
        token = self._leadership.token
        if token is None:
            return False
        return bool(await self._heard(keys=[self.keys.lease, self.keys.meta], args=[token, heard]))

    async def heard(self) -> bytes | None:
        held = await self._redis.hget(self.keys.meta, "h")  # type: ignore[misc]
        return held if isinstance(held, bytes) else None

    # -- reading (every node) --

    async def head(self) -> tuple[str, int] | None:
        """The line's (epoch, last seq) in Redis; None when nothing was published."""
        epoch, seq = await self._redis.hmget(self.keys.meta, ["e", "s"])  # type: ignore[misc]
        return None if epoch is None or seq is None else (epoch.decode(), int(seq))

    async def load_snapshot(self) -> Snapshot | None:
        held = await self._redis.hgetall(self.keys.snapshot)  # type: ignore[misc]
        if not held:
            return None
        parts = {k[2:].decode(): v for k, v in held.items() if k.startswith(b"p:")}
        return Snapshot(held[b"e"].decode(), int(held[b"s"]), parts, int(held[b"f"]))

    async def since_async(self, epoch: str, seq: int, *, limit: int | None = None) -> list[Published] | None:
        """Like `since`, from the stream in Redis: the patches after `seq` of `epoch`, or None."""
        held = self.since(epoch, seq)
        if held is not None:
            return held
        entries = await self._entries_since(epoch, seq, limit)
        return None if entries is None else [decode_entry(fields) for fields in entries]

    async def replay_async(self, epoch: str, seq: int, *, limit: int | None = None) -> list[tuple[int, bytes]] | None:
        """For a new leader: (seq, the engine's own form of the patch) for each patch after
        `seq` of `epoch` (its `internal`, else the supervisors' payload); None when not all held."""
        entries = await self._entries_since(epoch, seq, limit)
        if entries is None:
            return None
        return [(int(f[b"s"]), f.get(b"x") or f[Audience.SUPERVISOR.value.encode()]) for f in entries]

    async def _entries_since(self, epoch: str, seq: int, limit: int | None) -> list[dict[bytes, bytes]] | None:
        entries = await self._since(keys=[self.keys.meta, self.keys.patches],
                                    args=[epoch, seq, limit if limit is not None else self.maxlen])
        return None if entries is None else [_pairs(fields) for _, fields in entries]

    def since(self, epoch: str, seq: int) -> list[Published] | None:
        """From this node's own history only (no Redis): None when it does not hold them all."""
        if epoch != self.epoch or not self._history:
            return None
        held = self._history
        if seq < held[0].seq - 1 or seq > held[-1].seq:
            return None
        return [item for item in held if item.seq > seq]

    def subscribe(self, from_seq: int | None = None) -> contextlib.AbstractAsyncContextManager[
            AsyncIterator[Published]]:
        return held_then_new(self._history, self._queues, from_seq)

    async def start(self) -> None:
        """Start the reader; returns once it has read where the line is (or Redis is found down)."""
        if self._task is None:
            self._task = asyncio.create_task(self._read(), name=f"bus:{self.keys.scope}")
            await self._started.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _deliver(self, item: Published) -> None:
        if item.epoch == self.epoch and item.seq <= self._seq:
            return  # delivered already (the leader's own, or read again after a reconnect)
        if item.epoch != self.epoch:
            self._history.clear()
            self.epoch = item.epoch
        self._seq = item.seq
        self._history.append(item)
        for queue in self._queues:
            queue.put_nowait(item)

    async def _read(self) -> None:
        backoff = 0.05
        while True:
            try:
                await self._find_place()
                self._set_connected(True)
                backoff = 0.05
                while True:
                    async with asyncio.timeout(self._block_ms / 1000 + 5):
                        answer = await self._redis.xread({self.keys.patches: self._last_id or b"0-0"},
                                                         count=512, block=self._block_ms)
                    for _, entries in answer:
                        for entry_id, fields in entries:
                            item = decode_entry(fields)
                            self._last_id, self._last_read = entry_id, (item.epoch, item.seq)
                            self._deliver(item)
            except DOWN as e:
                self._set_connected(False, e)
                self._started.set()
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, 2.0)

    async def _find_place(self) -> None:
        """Where to read from: the newest entry on the first start (its history kept, not
        delivered); after a reconnect, on from our last entry if it is still there as we
        read it, else from the oldest held (Redis restarted or trimmed; `_deliver` skips
        what was delivered)."""
        if self._last_id is None:
            newest = await self._redis.xrevrange(self.keys.patches, count=self._history_size)
            for entry_id, fields in reversed(newest):
                item = decode_entry(fields)
                self._last_id, self._last_read = entry_id, (item.epoch, item.seq)
                if item.epoch != self.epoch:
                    self._history.clear()
                    self.epoch = item.epoch
                self._seq = item.seq
                self._history.append(item)
            self._last_id = self._last_id or b"0-0"
            return
        if self._last_id == b"0-0":
            return
        same = await self._redis.xrange(self.keys.patches, self._last_id, self._last_id)
        if not same or (decode_entry(same[0][1]).epoch, decode_entry(same[0][1]).seq) != self._last_read:
            log.warning("scope %s: the patch stream is not the one read before (Redis restarted?); "
                        "reading it from its start", self.keys.scope)
            self._last_id = b"0-0"

    def _set_connected(self, up: bool, error: BaseException | None = None) -> None:
        if up != self.connected or not self._started.is_set():
            if up:
                log.info("scope %s: reading patches from Redis", self.keys.scope)
            else:
                log.warning("scope %s: Redis unreachable for the patch stream (%s); retrying",
                            self.keys.scope, error or type(error).__name__)
            self.connected = up
            self._started.set()
            if self._on_connection is not None:
                self._on_connection(up)
