"""Limits on how often and how many: sliding-window counters, several budgets checked
together, concurrent slots, and a token bucket.

- `RateLimiter`: at most `limit` hits per key in any `window` seconds.
- `Budgets`: named limiters that a request passes only if it passes all of them
  (a login against its address, its username and the two together); the answer is
  0 or the seconds to wait, for a "try again in N s" and a `Retry-After` header.
- `Slots`: at most N things open at once per key (WebSockets per session).
- `TokenBucket`: a steady rate with a burst (messages a client sends on its socket).

Everything here runs on the event loop and is checked before any work is done, so
what is refused costs a dictionary lookup and no write anywhere.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass


class SharedUnavailable(Exception):
    """What is shared by every process (Redis: sessions, login budgets) cannot be reached now."""


# More keys than this in one window and the oldest are forgotten: memory stays bounded
# whatever the number of addresses or usernames an attacker cycles through.
MAX_KEYS = 50_000


class RateLimiter:
    def __init__(
        self, window: float = 60.0, *, clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str, limit: int) -> bool:
        """Count one hit for `key` and say whether it is within `limit`.

        A refused hit is not counted, so a client that keeps retrying gets
        through again as soon as its older hits leave the window.
        """
        return self.take(key, limit) == 0.0

    async def hit_async(self, key: str, limit: int) -> bool:
        """As `hit`, counted in Redis when shared by several processes (cluster/shared_auth.py)."""
        return self.hit(key, limit)

    def take(self, key: str, limit: int) -> float:
        """Count one hit and answer 0, or count nothing and answer the seconds to wait."""
        wait = self.retry_after(key, limit)
        if wait == 0.0:
            self._count(key)
        return wait

    def retry_after(self, key: str, limit: int) -> float:
        """Seconds until one more hit for `key` would be within `limit`; 0: now."""
        now = self._clock()
        hits = self._hits.get(key)
        if hits is None:
            return 0.0 if limit > 0 else self.window
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) < limit:
            return 0.0
        if limit <= 0:
            return self.window
        # the hit that must leave the window before one more fits
        return max(hits[len(hits) - limit] + self.window - now, 0.001)

    def refund(self, key: str) -> None:
        """Take back the newest hit of `key` (it turned out not to count)."""
        hits = self._hits.get(key)
        if hits:
            hits.pop()

    def _count(self, key: str) -> None:
        now = self._clock()
        hits = self._hits.get(key)
        if hits is None:
            self._forget_idle(now)
            hits = self._hits[key] = deque()
        hits.append(now)

    def _forget_idle(self, now: float) -> None:
        # Keys whose last hit left the window hold nothing; drop them so that
        # many one-off keys (IPs on the login form) cannot grow the table forever.
        if len(self._hits) < 1024:
            return
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]
        excess = len(self._hits) - self.max_keys + 1
        for key in list(self._hits)[:max(excess, 0)]:  # oldest first (insertion order)
            del self._hits[key]


@dataclass(frozen=True, slots=True)
class Budget:
    limit: int
    window: float  # seconds


class Budgets:
    """Named budgets that a request passes only if it passes every one.

    A refused request is counted in none of them: an address hammering one username
    does not also use up that username's budget for everyone else beyond what it
    was allowed.
    """

    def __init__(self, budgets: Mapping[str, Budget], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.budgets = dict(budgets)
        self._limiters = {name: RateLimiter(b.window, clock=clock) for name, b in budgets.items()}

    def take(self, keys: Mapping[str, str]) -> float:
        """Count one request under each budget's key and answer 0, or answer the seconds
        until every exhausted budget has room again (and count nothing)."""
        wait = max((self._limiters[name].retry_after(key, self.budgets[name].limit)
                    for name, key in keys.items()), default=0.0)
        if wait == 0.0:
            for name, key in keys.items():
                self._limiters[name].take(key, self.budgets[name].limit)
        return wait

    def refund(self, keys: Mapping[str, str]) -> None:
        """Take back a request counted by `take` (one that turned out not to count)."""
        for name, key in keys.items():
            self._limiters[name].refund(key)


def retry_after_header(seconds: float) -> str:
    """The value of a `Retry-After` header: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))


# Login: per address across usernames (password spraying), per username across
# addresses (one account guessed from many), and per address and username. Every attempt
# is counted before the PBX is asked (so that parallel guesses cannot slip through) and a
# successful one is taken back: a shift logging in behind one NAT address is not held up.
LOGIN_BUDGETS: Mapping[str, Budget] = {
    "address": Budget(30, 300.0),
    "username": Budget(20, 300.0),
    "address_username": Budget(10, 60.0),
}


class LoginBudgets(Budgets):
    def __init__(self, budgets: Mapping[str, Budget] = LOGIN_BUDGETS, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(budgets, clock=clock)

    def attempt(self, address: str, username: str) -> float:
        """0 when this login attempt may be tried (and it is counted), else seconds to wait."""
        return self.take(self._keys(address, username))

    def succeeded(self, address: str, username: str) -> None:
        """The attempt was a good login: it does not count against anyone."""
        self.refund(self._keys(address, username))

    # What web/login.py calls: the same, where budgets shared by several processes
    # (cluster/shared_auth.py) are counted in Redis. SharedUnavailable when they cannot be.
    async def attempt_async(self, address: str, username: str) -> float:
        return self.attempt(address, username)

    async def succeeded_async(self, address: str, username: str) -> None:
        self.succeeded(address, username)

    @staticmethod
    def _keys(address: str, username: str) -> dict[str, str]:
        name = username.strip().lower()
        return {"address": address, "username": name, "address_username": f"{address} {name}"}


# Attempts that would write an audit row (any action by a signed-in person or a kiosk,
# allowed or refused): per principal and per client address, checked before the row.
ACTION_BUDGETS: Mapping[str, Budget] = {
    "principal": Budget(60, 60.0),
    "address": Budget(120, 60.0),
}


class ActionBudgets(Budgets):
    def __init__(self, budgets: Mapping[str, Budget] = ACTION_BUDGETS, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(budgets, clock=clock)

    def attempt(self, principal: str, address: str) -> float:
        """0 when this attempt may be audited and tried, else seconds to wait."""
        return self.take({"principal": principal, "address": address})

    async def attempt_async(self, principal: str, address: str) -> float:
        """What web/actions.py calls: as `attempt`, counted in Redis when shared."""
        return self.attempt(principal, address)


class Slots:
    """At most `limit` open at once per key: `acquire` says whether one more fits."""

    def __init__(self) -> None:
        self._open: dict[str, int] = {}

    def acquire(self, key: str, limit: int) -> bool:
        count = self._open.get(key, 0)
        if count >= limit:
            return False
        self._open[key] = count + 1
        return True

    def release(self, key: str) -> None:
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)

    def count(self, key: str) -> int:
        return self._open.get(key, 0)

    # What web/ws.py and the keeper call: the same, where slots shared by several processes
    # (cluster/shared_auth.py) are counted in Redis.
    async def acquire_async(self, key: str, limit: int) -> bool:
        return self.acquire(key, limit)

    async def release_async(self, key: str) -> None:
        self.release(key)

    async def renew(self) -> None:
        """Keep this process's slots counted where they are shared (here: nothing to do)."""


class TokenBucket:
    """`rate` per second on average, `burst` at once; `take()` says whether one more fits."""

    def __init__(self, rate: float, burst: int, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True
