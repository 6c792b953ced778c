"""A call center's day: how busy each hour is, who works when, and what the agents can carry.

The same functions drive today's backlog (the records from before start-up) and the live
traffic, so both follow one day. Everything is drawn from seeded generators keyed by the
day's date, so a day is the same whenever the simulator is started.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterable
from dataclasses import dataclass

from wallboard.sim.clock import LocalTime

PROFILES = ("flat", "day")
HOUR = 3600.0
SLOT_SECONDS = 300.0  # the arrival rate is set again every 5 minutes

# Share of the peak rate by local hour, linear in between: opening at 07:30, a morning
# peak, a lunch dip, an afternoon peak, a long evening tail, and a night line.
CURVE = (
    (0.0, 0.02), (6.0, 0.02), (7.0, 0.12), (7.5, 0.35), (8.5, 0.8), (9.25, 1.0), (10.75, 1.0),
    (11.5, 0.65), (12.0, 0.4), (13.0, 0.4), (13.5, 0.6), (14.25, 0.9), (15.75, 0.9), (17.0, 0.55),
    (18.0, 0.35), (19.5, 0.18), (21.0, 0.07), (22.0, 0.02), (24.0, 0.02),
)  # fmt: skip
_HOURS = [h for h, _ in CURVE]

# An agent's time per offered call, ringing of a ring group included (from draws.py's
# outcomes, ring and talk times: about 100 s), and the share of their time they can
# be given calls without callers finding everyone busy.
AGENT_SECONDS_PER_CALL = 100.0
OCCUPANCY = 0.75


def level(hour: float, floor: float = 0.0) -> float:
    """How busy the hour is, as a share of the peak (never below `floor`)."""
    hour = hour % 24.0
    index = bisect.bisect_right(_HOURS, hour)
    (h0, v0), (h1, v1) = CURVE[index - 1], CURVE[min(index, len(CURVE) - 1)]
    value = v0 if h1 == h0 else v0 + (v1 - v0) * (hour - h0) / (h1 - h0)
    return max(floor, value)


def carry(agents_on: int) -> float:
    """Calls per minute that `agents_on` logged-in agents take without running out of hands."""
    return agents_on * OCCUPANCY * 60.0 / AGENT_SECONDS_PER_CALL


@dataclass(frozen=True, slots=True)
class Shift:
    name: str
    start: float  # local hours
    end: float  # local hours; above 24 it ends the next morning
    share: float  # of the agents
    meal: tuple[float, float] | None  # the window (local hours) a meal break starts in


SHIFTS = (
    Shift("early", 7.5, 16.5, 0.42, (11.0, 12.5)),
    Shift("mid", 9.0, 18.0, 0.30, (11.75, 13.25)),
    Shift("late", 12.5, 21.5, 0.18, (15.5, 16.75)),  # eats while the mid shift is still on
    Shift("night", 21.5, 31.5, 0.10, None),
)
NIGHT = SHIFTS[-1]

Interval = tuple[float, float]  # [logged in, logged out) in epoch seconds


class Rota:
    """Each worker's shift, and from it the log-ins and log-outs (breaks included) of any day."""

    def __init__(self, exts: Iterable[str], *, salt: str, local: LocalTime, floor: float = 0.0) -> None:
        self.salt = salt
        self.local = local
        self.shift_of: dict[str, Shift] = {}
        self._plans: dict[tuple[str, float], list[Interval]] = {}
        self._days: list[float] = []
        self._known: list[tuple[float, float]] = []  # [midnight, next midnight) of recent days
        exts = list(exts)
        for ext, shift in zip(exts, _assign(len(exts), random.Random(f"shifts-{salt}"), floor), strict=True):
            self.shift_of[ext] = shift

    def add(self, ext: str) -> Shift:
        """A worker added later takes the shift furthest below its share."""
        counts = {s.name: 0 for s in SHIFTS}
        for shift in self.shift_of.values():
            counts[shift.name] += 1
        total = len(self.shift_of) + 1
        shift = max(SHIFTS, key=lambda s: s.share * total - counts[s.name])
        self.shift_of[ext] = shift
        return shift

    def midnight(self, ts: float) -> float:
        """The local midnight that starts the day of `ts` (the last few days remembered)."""
        for start, end in self._known:
            if start <= ts < end:
                return start
        start = self.local.midnight(ts)
        self._known = [(start, self.local.midnight(start + 26 * HOUR)), *self._known[:3]]
        return start

    def plan(self, ext: str, midnight: float) -> list[Interval]:
        """The times `ext` is logged in on the shift that starts on the day of `midnight`."""
        key = (ext, midnight)
        found = self._plans.get(key)
        if found is None:
            if midnight not in self._days:
                self._days.append(midnight)
                if len(self._days) > 4:  # a few days around now are all anyone asks about
                    old = self._days.pop(0)
                    self._plans = {k: v for k, v in self._plans.items() if k[1] != old}
            day = self.local.format(midnight)[:10]
            rng = random.Random(f"plan-{self.salt}-{ext}-{day}")
            found = self._plans[key] = _plan(self.shift_of[ext], rng, midnight)
        return found

    def _around(self, ext: str, ts: float) -> list[Interval]:
        """The plans of yesterday (a night shift ends this morning), today and tomorrow."""
        today = self.midnight(ts)
        days = (self.midnight(today - HOUR), today, self.midnight(today + 26 * HOUR))
        return [span for day in days for span in self.plan(ext, day)]

    def spans(self, ext: str, start: float, end: float) -> list[Interval]:
        """Every log-in of `ext` that overlaps [start, end) (at most a day or so)."""
        first = self.midnight(start - 10 * HOUR)  # yesterday's night shift may still be on
        days, day = [], first
        while day < end:
            days.append(day)
            day = self.midnight(day + 26 * HOUR)
        return [(lo, hi) for day in days for lo, hi in self.plan(ext, day) if hi > start and lo < end]

    def on(self, ext: str, ts: float) -> bool:
        return any(start <= ts < end for start, end in self._around(ext, ts))

    def next_change(self, ext: str, ts: float) -> float:
        """The next log-in or log-out of `ext` after `ts`."""
        return min(edge for span in self._around(ext, ts) for edge in span if edge > ts)

    def staffed(self, start: float, end: float, step: float) -> list[int]:
        """Workers logged in at the middle of each `step` from `start` to `end`."""
        count = max(0, math.ceil((end - start) / step))
        diff = [0] * (count + 1)
        for ext in self.shift_of:
            days = {self.midnight(start - HOUR), *(self.midnight(start + k * 86400.0) for k in range(3))}
            for day in days:
                for lo, hi in self.plan(ext, day):
                    first = max(0, math.ceil((lo - start) / step - 0.5))
                    last = min(count, math.ceil((hi - start) / step - 0.5))
                    if first < last:
                        diff[first] += 1
                        diff[last] -= 1
        staffed, running = [], 0
        for k in range(count):
            running += diff[k]
            staffed.append(running)
        return staffed


def _assign(count: int, rng: random.Random, floor: float) -> list[Shift]:
    """Shifts by share (largest remainder), the night at least the floor and one agent once
    there are three; shuffled so that every team has people on every shift."""
    night = max(NIGHT.share, floor)
    scale = (1.0 - night) / (1.0 - NIGHT.share)
    shares = [night if s is NIGHT else s.share * scale for s in SHIFTS]
    exact = [share * count for share in shares]
    counts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(SHIFTS)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in by_remainder[: count - sum(counts)]:
        counts[i] += 1
    if count >= 3 and counts[-1] == 0:
        counts[-1] = 1
        counts[counts.index(max(counts))] -= 1
    shifts = [shift for shift, n in zip(SHIFTS, counts, strict=True) for _ in range(n)]
    rng.shuffle(shifts)
    return shifts


def _plan(shift: Shift, rng: random.Random, midnight: float) -> list[Interval]:
    """A shift with people a little early or late, a meal break and two short breaks."""
    start = midnight + shift.start * HOUR + rng.uniform(-600.0, 300.0)
    end = midnight + shift.end * HOUR + rng.uniform(-300.0, 900.0)
    if shift.meal is not None:
        meal = midnight + rng.uniform(*shift.meal) * HOUR
        meal_end = meal + rng.uniform(45.0, 60.0) * 60.0
    else:
        meal = (start + end) / 2 + rng.uniform(-1800.0, 1800.0)
        meal_end = meal + rng.uniform(20.0, 30.0) * 60.0
    breaks = [(meal, meal_end)]
    for lo, hi in ((start + 1.5 * HOUR, meal - 0.75 * HOUR), (meal_end + HOUR, end - HOUR)):
        if hi > lo:
            pause = rng.uniform(lo, hi)
            breaks.append((pause, pause + rng.uniform(10.0, 15.0) * 60.0))
    spans, at = [], start
    for lo, hi in sorted(breaks):
        spans.append((at, lo))
        at = hi
    spans.append((at, end))
    return [(lo, hi) for lo, hi in spans if hi > lo]
