"""15-minute intervals counted from CDRs, in memory: the pure half of the history.

Each inbound flow (a CDR, by its id: the `/v1/cdr` copy and the `cdr` webhook's are one
flow, a later copy filling in what the first lacked) counts in the interval it started in,
once for the whole floor (`all`), once for its hotline (the number dialled: the CDR's
`to_number`, the webhook's `hotline`), once for each team of the extension that took it
(or last rang for it) and once for that extension (`agent`). Teams are the configured
`[[teams]]` when given, else the ring group / queue the CDR names (`receive_dest`).

Per interval: offered (inbound calls), answered, missed (offered - answered), abandoned
(missed because the caller hung up: cause ORIGINATOR_CANCEL), in_sla (answered within
sla_seconds), wait_ms (answered calls' time to answer), talk_ms and talked (answered calls
whose end is known). The service level is in_sla / offered.

A change marks its intervals dirty; `take_dirty()` hands them to the writer (recorder.py),
so a CDR batch costs a few dictionary operations per record and no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from wallboard.pbx.times import PbxTime

SLOT_MINUTES = 15
SLOTS_PER_DAY = 24 * 60 // SLOT_MINUTES
KINDS = ("all", "hotline", "team", "agent")
ABANDONED_CAUSES = frozenset({"ORIGINATOR_CANCEL"})

Key = tuple[str, str, str, int]  # (day "YYYY-MM-DD", kind, group, slot)


@dataclass(slots=True)
class Bucket:
    offered: int = 0
    answered: int = 0
    missed: int = 0
    abandoned: int = 0
    in_sla: int = 0
    wait_ms: int = 0
    talk_ms: int = 0
    talked: int = 0

    def add(self, other: Bucket, sign: int = 1) -> None:
        for f in COUNT_FIELDS:
            setattr(self, f, getattr(self, f) + sign * getattr(other, f))

    def values(self) -> dict[str, int]:
        return {f: getattr(self, f) for f in COUNT_FIELDS}

    def figures(self) -> dict[str, Any]:
        """The counts and what a screen shows of them (None where there is nothing to divide)."""
        return {**self.values(),
                "service_level": round(100 * self.in_sla / self.offered, 1) if self.offered else None,
                "avg_wait": round(self.wait_ms / self.answered / 1000, 1) if self.answered else None,
                "avg_talk": round(self.talk_ms / self.talked / 1000, 1) if self.talked else None}


COUNT_FIELDS = tuple(f.name for f in fields(Bucket))


@dataclass(frozen=True, slots=True)
class Call:
    """One inbound flow as far as the history cares."""

    started: int  # epoch ms
    answered: int | None
    ended: int | None
    hotline: str = ""
    dest: str = ""  # ring group / queue (receive_dest), /v1/cdr only
    ext: str = ""
    abandoned: bool = False

    def merged(self, new: Call) -> Call:
        return Call(self.started, self.answered if self.answered is not None else new.answered,
                    self.ended if self.ended is not None else new.ended,
                    self.hotline or new.hotline, self.dest or new.dest, self.ext or new.ext,
                    self.abandoned or (new.abandoned and self.answered is None and new.answered is None))


_SHAPE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d\d:\d{2}")
_CACHED = 4096


class Times:
    """PbxTime.parse and the interval of a moment, fast: a day's CDRs repeat the same few
    hundred ten-minute prefixes, so the zone is asked once per prefix, not three times per
    record (strptime and zoneinfo cost most of a record's counting otherwise). Equal to
    PbxTime.parse wherever a zone's offset changes on a ten-minute boundary (every zone
    today); anything not written YYYY-MM-DD HH:MM:SS goes to PbxTime.parse itself."""

    def __init__(self, clock: PbxTime) -> None:
        self.clock = clock
        self._tens: dict[str, int | None] = {}  # "YYYY-MM-DD HH:M" -> epoch ms of its start
        self._minutes: dict[int, tuple[str, int]] = {}  # epoch minute -> (day, slot)

    def parse(self, text: object) -> int | None:
        if not isinstance(text, str) or len(text) != 19 or not _SHAPE.fullmatch(text):
            return self.clock.parse(text)
        prefix = text[:15]
        base = self._tens.get(prefix, -1)
        if base == -1:
            if len(self._tens) > _CACHED:
                self._tens.clear()
            base = self._tens[prefix] = self.clock.parse(prefix + "0:00")
        if base is None:
            return None
        minute, second = int(text[15]), int(text[17:19])
        if second > 59:
            return None
        return base + minute * 60_000 + second * 1000

    def slot_of(self, at_ms: int) -> tuple[str, int]:
        minute = at_ms // 60_000
        found = self._minutes.get(minute)
        if found is None:
            if len(self._minutes) > _CACHED:
                self._minutes.clear()
            local = datetime.fromtimestamp(at_ms / 1000, self.clock.zone)
            found = self._minutes[minute] = (local.strftime("%Y-%m-%d"),
                                             (local.hour * 60 + local.minute) // SLOT_MINUTES)
        return found


def call_of_cdr(clock: PbxTime | Times, r: Any) -> Call | None:
    """A `/v1/cdr` record (pbx/models.py Cdr) as a Call; None for outbound, local or unreadable."""
    if r.direction != "inbound":
        return None
    started = clock.parse(r.time_started)
    if started is None:
        return None
    answered = clock.parse(r.time_answered) if r.status == "ANSWERED" else None
    return Call(started, answered, clock.parse(r.time_ended), r.to_number.strip(), r.receive_dest.strip(),
                r.extension.strip(), answered is None and r.cause.strip().upper() in ABANDONED_CAUSES)


def call_of_event(ev: Any) -> Call | None:
    """A `cdr` webhook (pbx/events.py CallEvent): the hotline named, no ring group, no cause."""
    if ev.direction != "inbound" or ev.time_started is None:
        return None
    answered = ev.time_answered if ev.status == "ANSWERED" else None
    return Call(ev.time_started, answered, ev.time_ended, ev.hotline.strip(), "", ev.extension.strip())


def one(call: Call, sla_ms: int) -> Bucket:
    b = Bucket(offered=1)
    if call.answered is None:
        b.missed = 1
        b.abandoned = int(call.abandoned)
        return b
    b.answered = 1
    wait = max(0, call.answered - call.started)
    b.wait_ms, b.in_sla = wait, int(wait <= sla_ms)
    if call.ended is not None and call.ended >= call.answered:
        b.talk_ms, b.talked = call.ended - call.answered, 1
    return b


@dataclass
class Intervals:
    """Flows and their intervals for any days (the recorder keeps today's and yesterday's
    flows, a backfill one day's)."""

    clock: PbxTime
    sla_seconds: int
    teams: Mapping[str, frozenset[str]] = field(default_factory=dict)  # configured: name -> extensions
    calls: dict[str, Call] = field(default_factory=dict)
    buckets: dict[Key, Bucket] = field(default_factory=dict)
    dirty: set[Key] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.times = Times(self.clock)

    def slot_of(self, at_ms: int) -> tuple[str, int]:
        return self.times.slot_of(at_ms)

    def groups(self, call: Call) -> list[tuple[str, str]]:
        out = [("all", "")]
        if call.hotline:
            out.append(("hotline", call.hotline))
        if self.teams:
            out += [("team", name) for name, exts in self.teams.items() if call.ext and call.ext in exts]
        elif call.dest:
            out.append(("team", call.dest))
        if call.ext:
            out.append(("agent", call.ext))
        return out

    def add(self, key: str, call: Call | None) -> bool:
        key = key.strip()
        if call is None or not key:
            return False
        old = self.calls.get(key)
        if old is not None:
            call = old.merged(call)
            if call == old:
                return False
            self._count(old, -1)
        self.calls[key] = call
        self._count(call, +1)
        return True

    def add_cdrs(self, records: Iterable[Any]) -> int:
        return sum(self.add(r.id, call_of_cdr(self.times, r)) for r in records)

    def add_event(self, ev: Any) -> bool:
        return self.add(ev.call_id, call_of_event(ev))

    def _count(self, call: Call, sign: int) -> None:
        day, slot = self.slot_of(call.started)
        counts = one(call, self.sla_seconds * 1000)
        for kind, group in self.groups(call):
            key = (day, kind, group, slot)
            bucket = self.buckets.get(key)
            if bucket is None:
                bucket = self.buckets[key] = Bucket()
            bucket.add(counts, sign)
            self.dirty.add(key)

    def set_teams(self, teams: Mapping[str, frozenset[str]]) -> None:
        """A new team mapping: every flow kept is counted again."""
        if dict(teams) == dict(self.teams):
            return
        for call in self.calls.values():
            self._count(call, -1)
        self.teams = dict(teams)
        for call in self.calls.values():
            self._count(call, +1)

    def take_dirty(self) -> list[tuple[Key, Bucket]]:
        keys, self.dirty = self.dirty, set()
        return [(key, self.buckets[key]) for key in sorted(keys)]

    def forget_before(self, day: str) -> None:
        """Drop flows and intervals of days before `day` (written already)."""
        self.calls = {k: c for k, c in self.calls.items() if self.slot_of(c.started)[0] >= day}
        self.buckets = {k: b for k, b in self.buckets.items() if k[0] >= day}
        self.dirty = {k for k in self.dirty if k[0] >= day}

    def members(self) -> dict[str, frozenset[str]]:
        """Each team's extensions: the configured ones, else those the ring groups' calls reached."""
        if self.teams:
            return dict(self.teams)
        seen: dict[str, set[str]] = {}
        for call in self.calls.values():
            if call.dest and call.ext:
                seen.setdefault(call.dest, set()).add(call.ext)
        return {dest: frozenset(exts) for dest, exts in sorted(seen.items())}


def day_totals(intervals: Intervals, day: str) -> dict[tuple[str, str], Bucket]:
    """One day's counts per (kind, group), its intervals added up (for /metrics)."""
    out: dict[tuple[str, str], Bucket] = {}
    for (d, kind, group, _slot), bucket in intervals.buckets.items():
        if d == day and kind in ("hotline", "team"):
            total = out.get((kind, group))
            if total is None:
                total = out[(kind, group)] = Bucket()
            total.add(bucket)
    return out
