"""Simulated time: a wall clock that may run faster than real time, and PBX local time."""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

LOCAL_FORMAT = "%Y-%m-%d %H:%M:%S"


class SimClock:
    """Sim epoch seconds: starts at the real time and runs `speed` times faster.

    Monotonic underneath so that a wall-clock jump on the host never moves calls backwards.
    """

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._start = time.time() if start is None else start
        self._mono0 = time.monotonic()

    def now(self) -> float:
        return self._start + (time.monotonic() - self._mono0) * self.speed

    def real_seconds(self, sim_seconds: float) -> float:
        """How long to really wait for `sim_seconds` of sim time to pass."""
        return sim_seconds / self.speed


class LocalTime:
    """Converts between epoch seconds and the PBX's zone-less local strings."""

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)

    def format(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.zone).strftime(LOCAL_FORMAT)

    def parse(self, text: str) -> float:
        """`YYYY-MM-DD HH:MM:SS` in PBX local time; ValueError when malformed."""
        moment = datetime.strptime(text, LOCAL_FORMAT)
        return moment.replace(tzinfo=self.zone).timestamp()

    def parse_loose(self, text: str) -> float:
        """The CDR filters also take a bare date, meaning its midnight."""
        text = text.strip()
        if len(text) == 10:
            text += " 00:00:00"
        return self.parse(text)

    def midnight(self, ts: float) -> float:
        day = datetime.fromtimestamp(ts, self.zone).replace(hour=0, minute=0, second=0, microsecond=0)
        return day.timestamp()
