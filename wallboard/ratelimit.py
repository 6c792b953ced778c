"""A sliding-window counter per key: at most `limit` hits in any `window` seconds."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self, window: float = 60.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str, limit: int) -> bool:
        """Count one hit for `key` and say whether it is within `limit`.

        A refused hit is not counted, so a client that keeps retrying gets
        through again as soon as its older hits leave the window.
        """
        now = self._clock()
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= limit:
            return False
        hits.append(now)
        self._forget_idle(now)
        return True

    def _forget_idle(self, now: float) -> None:
        # Keys whose last hit left the window hold nothing; drop them so that
        # many one-off keys (IPs on the login form) cannot grow the table forever.
        if len(self._hits) < 1024:
            return
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]:
            del self._hits[key]
