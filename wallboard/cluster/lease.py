"""One leader per scope: a lease in Redis with a fencing token.

A Redis lock is a lease, not consensus (Kleppmann, "How to do distributed locking"): a
leader paused past its lease (GC, SIGSTOP, a VM freeze) wakes up believing it still
leads. So every win bumps a counter, the fence, and the lease's value names it
('<node> <fence> <nonce>': the nonce keeps a value from ever coming back when a Redis
without persistence restarts empty and the counter starts over). Every write of the
leader goes through a Lua script that first checks the lease still holds exactly that
value (`redis_bus.py`, `intake.py`): Redis itself refuses the paused leader, not its
own clock.

The local view (`is_leader`) is advisory: it turns false when the lease may have run out
by our own clock (counted from before the renewal was sent, so never later than Redis'
expiry), and at once when a renewal finds the lease is not ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from wallboard.cluster.keys import Keys

log = logging.getLogger("wallboard.cluster.lease")

# How often a node looks at a lease another node holds when the scope is assigned to it:
# only while a hand-over is pending (the holder releases it within a lease), so cheap.
HAND_OVER_POLL_S = 0.05

# KEYS: lease, fence. ARGV: node, lease ms, nonce, hold back (1: only look).
# -> {1, fence} when this call won (a new fence; the lease is '<node> <fence> <nonce>');
#    {0, holder, pttl ms} when someone holds it; {2} when free and held back.
ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder then
  return {0, holder, redis.call('PTTL', KEYS[1])}
end
if ARGV[4] == '1' then
  return {2}
end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. fence .. ' ' .. ARGV[3], 'PX', ARGV[2])
return {1, fence}
"""

# KEYS: lease. ARGV: our value, lease ms. -> 1 extended; 0 not ours (any more).
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lease. ARGV: our value. -> 1 released; 0 it was not ours.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class Leadership:
    """Contends for the lease of `scope` while started; `won` / `lost` are set while this
    node leads / does not. `token` is what fenced writes carry."""

    def __init__(self, redis: Redis, scope: str, node: str, lease_seconds: float = 5.0,
                 *, renew_every: float | None = None, prefer: Callable[[], bool] | None = None,
                 hand_to: Callable[[], str | None] | None = None) -> None:
        """`prefer()`: should this node lead the scope (members.py)? When not, it takes a
        free lease only after it stayed free for `grace`. `hand_to()`: the node a leader
        should hand the scope to now, if any."""
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        if not node or len(node.split()) != 1:
            raise ValueError(f"node id {node!r} must be one word")
        self.keys = Keys(scope)
        self.node = node
        self.lease_seconds = lease_seconds
        # Three tries per lease: one lost renewal (a slow Redis, a reconnect) costs nothing.
        self.renew_every = renew_every or lease_seconds / 3
        self.fence: int | None = None
        self._nonce = ""
        self.won = asyncio.Event()
        self.lost = asyncio.Event()
        self.lost.set()
        self._valid_until = 0.0
        self._acquire = redis.register_script(ACQUIRE)
        self._renew = redis.register_script(RENEW)
        self._release = redis.register_script(RELEASE)
        self._task: asyncio.Task[None] | None = None
        self._redis_down = False
        self._prefer = prefer
        self._hand_to = hand_to
        self.grace = min(self.lease_seconds / 4, 1.0)
        self._free_since: float | None = None

    @property
    def scope(self) -> str:
        return self.keys.scope

    @property
    def token(self) -> str | None:
        """The lease's value while we believe we lead; Redis has the last word on it."""
        return None if self.fence is None else f"{self.node} {self.fence} {self._nonce}"

    @property
    def is_leader(self) -> bool:
        return self.fence is not None and time.monotonic() < self._valid_until

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"lease:{self.scope}")

    async def stop(self) -> None:
        """Stop contending; a leader gives the lease up so that another takes over at once."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        token = self.token
        if token is not None:
            self._step_down("stopped")
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(self.renew_every):
                    await self._release(keys=[self.keys.lease], args=[token])

    def demote(self, reason: str) -> None:
        """A fenced write was refused: we are not the leader, whatever our clock says."""
        self._step_down(reason)

    async def _run(self) -> None:
        while True:
            pause = await (self._keep() if self.fence is not None else self._contend())
            if self.fence is not None:  # never sleep past the lease: step down on time
                pause = min(pause, max(0.0, self._valid_until - time.monotonic()))
            await asyncio.sleep(pause)
            if self.fence is not None and time.monotonic() >= self._valid_until:
                self._step_down(f"no renewal for {self.lease_seconds} s")

    async def _contend(self) -> float:
        sent = time.monotonic()
        nonce = secrets.token_hex(4)
        hold_back = (self._prefer is not None and not self._prefer()
                     and (self._free_since is None or sent - self._free_since < self.grace))
        try:
            async with asyncio.timeout(self.renew_every):
                answer = await self._acquire(keys=[self.keys.lease, self.keys.fence],
                                             args=[self.node, int(self.lease_seconds * 1000), nonce,
                                                   int(hold_back)])
        except (RedisError, OSError, TimeoutError) as e:
            self._down(e)
            return self.renew_every
        self._up()
        if int(answer[0]) == 2:  # free, and another node should take it: give it the grace
            if self._free_since is None:
                self._free_since = sent
            return max(0.002, self._free_since + self.grace - time.monotonic())
        self._free_since = None
        if int(answer[0]) == 1:
            self._valid_until = sent + self.lease_seconds
            self.fence, self._nonce = int(answer[1]), nonce
            self.lost.clear()
            self.won.set()
            log.info("node %s leads scope %s (fence %d)", self.node, self.scope, self.fence)
            return self.renew_every
        # Someone holds it: try again just after it would run out, if that is sooner; the
        # node it is assigned to looks often, as its holder hands it over (members.py).
        left = int(answer[2])
        if left <= 0:
            return 0.002
        soon = HAND_OVER_POLL_S if self._prefer is not None and self._prefer() else self.renew_every
        return min(soon, left / 1000 + 0.002)

    async def _keep(self) -> float:
        token = self.token
        assert token is not None
        sent = time.monotonic()
        try:
            async with asyncio.timeout(self.renew_every):
                kept = await self._renew(keys=[self.keys.lease], args=[token, int(self.lease_seconds * 1000)])
        except (RedisError, OSError, TimeoutError) as e:
            self._down(e)
            return self.renew_every / 4  # try again soon: the lease is running out
        self._up()
        if int(kept) != 1:
            self._step_down("the lease is no longer ours")
            return 0.0
        self._valid_until = sent + self.lease_seconds
        owner = self._hand_to() if self._hand_to is not None else None
        if owner is not None:
            await self._hand_over(token, owner)
            return 0.0
        return self.renew_every

    async def _hand_over(self, token: str, owner: str) -> None:
        """Release the lease for the node the scope is assigned to (it contends without grace)."""
        self._step_down(f"handing the scope to {owner}, the node it is assigned to")
        try:
            async with asyncio.timeout(self.renew_every):
                await self._release(keys=[self.keys.lease], args=[token])
        except (RedisError, OSError, TimeoutError) as e:
            self._down(e)  # it runs out on its own

    def _step_down(self, reason: str) -> None:
        if self.fence is None:
            return
        log.warning("node %s no longer leads scope %s (fence %d): %s", self.node, self.scope, self.fence, reason)
        self.fence = None
        self._valid_until = 0.0
        self.won.clear()
        self.lost.set()

    def _down(self, error: BaseException) -> None:
        if not self._redis_down:
            self._redis_down = True
            log.warning("scope %s: Redis unreachable for the lease (%s); retrying", self.scope,
                        error or type(error).__name__)

    def _up(self) -> None:
        if self._redis_down:
            self._redis_down = False
            log.info("scope %s: Redis reachable again for the lease", self.scope)
