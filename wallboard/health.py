"""The health of each PBX source, in one place: what the poller needs to pace its reads
(failures in a row, backoff, an open circuit) and what screens are shown (ok, when it
last answered, the error), plus the tally of webhooks received.

A failing source backs off with full jitter and, after `CIRCUIT_AFTER` failures in a
row, its circuit opens: it is left alone for half to all of `CIRCUIT_OPEN_S`, so a dead
PBX is not hammered. The probe source (agents) never backs off beyond its interval.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

SOURCES = ("agents", "calls", "status", "cdr")
PROBE = "agents"  # the source that keeps asking while the others' circuits are open
CIRCUIT_AFTER = 5
CIRCUIT_OPEN_S = 30.0
BACKOFF_CAP_S = 30.0
# The PBX refuses the key itself (a wrong key, a disabled tenant): after a few refusals
# in a row even the probe asks only this often, until the key works again.
REFUSED_CODES = frozenset({"INVALID_CREDENTIALS", "TENANT_DISABLED", "HTTP_401", "HTTP_403"})
REFUSED_AFTER = 3
REFUSED_RETRY_S = 60.0


@dataclass
class SourceHealth:
    interval: float = 0.0
    probe: bool = False
    ok: bool = False
    at: int | None = None  # our clock (epoch ms) when the last successful read was sent
    error: str | None = None
    failures: int = 0  # in a row
    next_try: float = 0.0  # monotonic seconds; before it the poller skips its turn
    runs: int = 0

    def view(self) -> dict[str, Any]:
        return {"ok": self.ok, "at": self.at, "error": self.error}

    def succeeded(self, at: int) -> bool:
        """A read sent at `at` was merged; True when screens must be told (it was not ok)."""
        changed = not self.ok
        self.ok, self.at, self.error = True, at, None
        self.failures, self.next_try = 0, 0.0
        return changed

    def failed(self, error: str, rng: random.Random, code: str = "") -> bool:
        """A read failed: back off; True when what screens are shown changed."""
        self.failures += 1
        if code in REFUSED_CODES and self.failures >= REFUSED_AFTER:
            delay, least = REFUSED_RETRY_S, REFUSED_RETRY_S / 2  # polling a refused key helps no one
        elif self.probe:
            delay, least = self.interval, 0.0
        elif self.failures >= CIRCUIT_AFTER:
            delay, least = CIRCUIT_OPEN_S, CIRCUIT_OPEN_S / 2  # an open circuit really holds off
        else:
            delay, least = min(BACKOFF_CAP_S, self.interval * 2 ** (self.failures - 1)), 0.0
        # jitter: a fleet of wallboards does not retry in step
        self.next_try = time.monotonic() + rng.uniform(least, delay)
        return self.down(error)

    def down(self, error: str) -> bool:
        """Not ok (a failure, or no answer for too long); True when that is news."""
        changed = self.ok or self.error != error
        self.ok, self.error = False, error
        return changed

    def close_circuit(self) -> None:
        """The PBX answered another source again: try this one at its next turn."""
        self.next_try = 0.0

    @property
    def circuit_open(self) -> bool:
        return self.failures >= CIRCUIT_AFTER and not self.probe


@dataclass
class Health:
    sources: dict[str, SourceHealth] = field(default_factory=lambda: {s: SourceHealth() for s in SOURCES})
    webhooks: dict[str, Any] = field(default_factory=lambda: {"at": None, "received": 0, "rejected": 0})

    @classmethod
    def for_intervals(cls, intervals: dict[str, float]) -> Health:
        health = cls({s: SourceHealth(intervals[s], probe=s == PROBE) for s in SOURCES})
        return health

    def __getitem__(self, source: str) -> SourceHealth:
        return self.sources[source]

    def view(self) -> dict[str, Any]:
        """The state's `sources` (SPEC section 5)."""
        return {**{s: h.view() for s, h in self.sources.items()}, "webhooks": dict(self.webhooks)}

    def heard(self) -> dict[str, int | None]:
        """Each source's last success: sent in pings, as polls that change nothing send no patch."""
        return {**{s: h.at for s, h in self.sources.items()}, "webhooks": self.webhooks["at"]}
