"""Webhooks on any node, none lost: an intake stream per scope, read by its leader.

Any node checks a webhook and XADDs its body to the scope's intake stream; it answers 200
only once Redis has it. The leader reads the stream in order through a consumer group
and acknowledges an event in the same Lua script that publishes the patch it caused
(`RedisBus.publish(..., acks=)`), or with `ack` when it changed nothing: an event is
acknowledged exactly when its effect is out. Acknowledged events are deleted, so the
stream holds only what is still to be applied.

Reads are fenced like writes: they go through a script that checks the lease first, so
a paused leader that wakes up cannot take events out from under the next one. A new
leader first claims every event still pending — accepted by some node, read by a leader
that died before acknowledging it — in stream order, then reads the new ones.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from wallboard.cluster.keys import INTAKE_GROUP, Keys
from wallboard.cluster.redis_bus import DOWN, Fence, Fenced

log = logging.getLogger("wallboard.cluster.intake")

# KEYS: lease, intake. ARGV: token, group, consumer, mode, count, cursor.
# mode 'claim': the pending events of any consumer from `cursor` on, now ours
#   -> {'claim', next cursor ('0-0': none left), entries}
# mode 'new': events never read by the group -> {'new', newest id held ('0-0': none), entries}
# -> {'fenced', holder} when the lease is not `token`.
TAKE = """
local holder = redis.call('GET', KEYS[1])
if holder ~= ARGV[1] then
  return {'fenced', holder or ''}
end
if ARGV[4] == 'claim' then
  local got = redis.call('XAUTOCLAIM', KEYS[2], ARGV[2], ARGV[3], 0, ARGV[6], 'COUNT', ARGV[5])
  return {'claim', got[1], got[2]}
end
local got = redis.call('XREADGROUP', 'GROUP', ARGV[2], ARGV[3], 'COUNT', ARGV[5], 'STREAMS', KEYS[2], '>')
local entries = got and got[1][2] or {}
local newest = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
return {'new', newest[1] and newest[1][1] or '0-0', entries}
"""

# KEYS: lease, intake. ARGV: token, group, ids... -> 1 | {'fenced', holder}
ACK = """
local holder = redis.call('GET', KEYS[1])
if holder ~= ARGV[1] then
  return {'fenced', holder or ''}
end
local ids = {unpack(ARGV, 3)}
redis.call('XACK', KEYS[2], ARGV[2], unpack(ids))
redis.call('XDEL', KEYS[2], unpack(ids))
return 1
"""


@dataclass(frozen=True, slots=True)
class IntakeEvent:
    id: str
    body: bytes
    received: int  # epoch ms, when the node accepted it: parse with this, not with the apply time
    kind: str = "webhook"  # or "monitor": a supervisor's action on another node (cluster/node.py)


def _events(entries: Sequence[Sequence[object]]) -> list[IntakeEvent]:
    events = []
    for entry_id, flat in entries:
        if not flat:  # deleted meanwhile
            continue
        assert isinstance(entry_id, bytes) and isinstance(flat, list)
        fields = dict(zip(flat[::2], flat[1::2], strict=True))
        events.append(IntakeEvent(entry_id.decode(), fields[b"b"], int(fields[b"r"]),
                                  fields.get(b"k", b"webhook").decode()))
    return events


def _order(entry_id: str) -> tuple[int, int]:
    ms, _, n = entry_id.partition("-")
    return int(ms), int(n or 0)


class Intake:
    """The intake stream of one scope. Any node `accept`s; the leader reads `batches`."""

    def __init__(self, redis: Redis, scope: str, *, maxlen: int = 100_000) -> None:
        self.keys = Keys(scope)
        # A bound for when no leader reads for a long time; never reached otherwise.
        self.maxlen = maxlen
        self._redis = redis
        self._take = redis.register_script(TAKE)
        self._ack = redis.register_script(ACK)

    async def accept(self, body: bytes, received: int, kind: str = "webhook") -> str:
        """Durably queued once this returns (as durable as Redis is configured: AOF for no loss)."""
        fields: dict[str, bytes | int | str] = {"b": body, "r": received}
        if kind != "webhook":
            fields["k"] = kind
        entry_id = await self._redis.xadd(self.keys.intake, fields,  # type: ignore[arg-type]
                                          maxlen=self.maxlen, approximate=True)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)

    async def ack(self, leadership: Fence, ids: Iterable[str | bytes]) -> None:
        """Acknowledge (and delete) applied events that published nothing."""
        ids = list(ids)
        if not ids:
            return
        answer = await self._ack(keys=[self.keys.lease, self.keys.intake], args=[self._token(leadership),
                                                                                   INTAKE_GROUP, *ids])
        if isinstance(answer, list):
            self._fenced(leadership, answer[1])

    async def batches(self, leadership: Fence, *, count: int = 256,
                      block_ms: int = 1000) -> AsyncIterator[list[IntakeEvent]]:
        """While leading: first the events left pending by earlier leaders, then new ones, in
        order. Raises Fenced once the lease is not ours; rides out Redis being down."""
        await self._ensure_group()
        cursor = "0-0"
        claiming = True
        backoff = 0.05
        last: tuple[int, int] = (0, 0)  # the newest event handed out
        while True:
            try:
                mode = "claim" if claiming else "new"
                answer = await self._take(keys=[self.keys.lease, self.keys.intake],
                                          args=[self._token(leadership), INTAKE_GROUP, self._consumer(leadership),
                                                mode, count, cursor])
                backoff = 0.05
                if answer[0] == b"fenced":
                    self._fenced(leadership, answer[1])
                events = [e for e in _events(answer[2]) if _order(e.id) > last]
                if claiming:
                    cursor = answer[1].decode()
                    claiming = cursor != "0-0"
                    if events:
                        log.info("scope %s: %d webhook events left pending by an earlier leader, applied now",
                                 self.keys.scope, len(events))
                if events:
                    last = _order(events[-1].id)
                    yield events
                elif not claiming:  # wait for one more (XREAD: it takes nothing)
                    async with asyncio.timeout(block_ms / 1000 + 5):
                        await self._redis.xread({self.keys.intake: answer[1]}, count=1, block=block_ms)
            except ResponseError as e:
                if "NOGROUP" not in str(e):
                    raise
                log.warning("scope %s: the intake's group is gone (Redis restarted empty?); made again",
                            self.keys.scope)
                await self._ensure_group()
                cursor, claiming = "0-0", True
            except DOWN:
                # A read's answer may be lost with the connection, its events ours but never
                # seen: claim ours again from the last one handed out.
                cursor, claiming = "{}-{}".format(*last), True
                await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
                backoff = min(backoff * 2, 2.0)

    async def _ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self.keys.intake, INTAKE_GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise
        except DOWN:
            pass  # the reads retry, and make it on NOGROUP

    def _token(self, leadership: Fence) -> str:
        token = leadership.token
        if token is None:
            raise Fenced(f"scope {self.keys.scope}: this node does not lead")
        return token

    @staticmethod
    def _consumer(leadership: Fence) -> str:
        token = leadership.token
        assert token is not None
        return token.split(" ", 1)[0]  # the node

    def _fenced(self, leadership: Fence, holder: bytes) -> None:
        who = holder.decode() or "nobody"
        leadership.demote(f"Redis refused to hand out webhook events: the lease is {who!r}'s")
        raise Fenced(f"scope {self.keys.scope}: the lease is {who!r}'s")
