"""Teams and hotlines: the board's figures per team (a named set of extensions, or a ring
group / queue as the CDRs show it) and per hotline (the number the caller dialled).

Two halves:
- `GroupDay`, today's counts per hotline, per ring group (`receive_dest`) and per
  extension, from the CDRs (each counted once by id, a later copy filling in what the
  first lacked, as `stats.DayStats` does): answered, missed, within the service level,
  wait and talk time. Inbound calls only: teams and hotlines are about callers.
- `group_figures(...)`, the live half (callers waiting, the longest wait, agents ringing,
  talking, idle, in wrap-up) added to those counts, computed from the live agents and
  calls when asked (engine.py asks twice a second, not per event).

Without `[[teams]]` the teams are the ring groups the day's CDRs name, each with the
extensions that took (or last rang for) its calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wallboard.pbx.times import PbxTime
from wallboard.settings import TeamSettings


@dataclass(slots=True)
class Counts:
    inbound: int = 0
    answered: int = 0
    in_sla: int = 0
    wait_ms: int = 0  # answered calls' time to answer
    talk_ms: int = 0
    talked: int = 0  # answered calls whose end is known

    def add(self, other: Counts, sign: int) -> None:
        self.inbound += sign * other.inbound
        self.answered += sign * other.answered
        self.in_sla += sign * other.in_sla
        self.wait_ms += sign * other.wait_ms
        self.talk_ms += sign * other.talk_ms
        self.talked += sign * other.talked

    def figures(self) -> dict[str, Any]:
        missed = self.inbound - self.answered
        return {
            "answered": self.answered, "missed": missed,
            "service_level": round(100 * self.in_sla / self.inbound, 1) if self.inbound else None,
            "missed_rate": round(100 * missed / self.inbound, 1) if self.inbound else None,
            "avg_wait": round(self.wait_ms / self.answered / 1000, 1) if self.answered else None,
            "avg_talk": round(self.talk_ms / self.talked / 1000, 1) if self.talked else None,
        }


@dataclass(frozen=True, slots=True)
class _Flow:
    hotline: str
    dest: str
    ext: str
    started: int
    answered: int | None
    ended: int | None

    def merged(self, new: _Flow) -> _Flow:
        return _Flow(self.hotline or new.hotline, self.dest or new.dest, self.ext or new.ext, self.started,
                     self.answered if self.answered is not None else new.answered,
                     self.ended if self.ended is not None else new.ended)


@dataclass
class GroupDay:
    clock: PbxTime
    sla_seconds: int
    day_start: int
    flows: dict[str, _Flow] = field(default_factory=dict)
    by_hotline: dict[str, Counts] = field(default_factory=dict)
    by_dest: dict[str, Counts] = field(default_factory=dict)
    by_ext: dict[str, Counts] = field(default_factory=dict)
    dest_members: dict[str, set[str]] = field(default_factory=dict)
    total: Counts = field(default_factory=Counts)

    def new_day(self, now_ms: int) -> None:
        self.day_start = self.clock.day_start_ms(now_ms)
        self.flows.clear()
        self.by_hotline.clear()
        self.by_dest.clear()
        self.by_ext.clear()
        self.dest_members.clear()
        self.total = Counts()

    def add_cdrs(self, records: Iterable[Any]) -> None:
        """`/v1/cdr` records (pbx/models.py Cdr)."""
        for r in records:
            if r.direction != "inbound":
                continue
            started = self.clock.parse(r.time_started)
            if started is None:
                continue
            answered = self.clock.parse(r.time_answered) if r.status == "ANSWERED" else None
            self._add(r.id.strip(), _Flow(r.to_number.strip(), r.receive_dest.strip(), r.extension.strip(),
                                          started, answered, self.clock.parse(r.time_ended)))

    def add_event(self, ev: Any) -> None:
        """A `cdr` webhook (pbx/events.py CallEvent): no receive_dest, the hotline named."""
        if ev.direction != "inbound" or ev.time_started is None:
            return
        answered = ev.time_answered if ev.status == "ANSWERED" else None
        self._add(ev.call_id.strip(), _Flow(ev.hotline.strip(), "", ev.extension.strip(), ev.time_started,
                                            answered, ev.time_ended))

    def _add(self, key: str, flow: _Flow) -> None:
        if not key or flow.started < self.day_start:
            return
        old = self.flows.get(key)
        if old is not None:
            flow = old.merged(flow)
            if flow == old:
                return
            self._count(old, -1)
        self.flows[key] = flow
        self._count(flow, +1)

    def _count(self, flow: _Flow, sign: int) -> None:
        one = Counts(inbound=1)
        if flow.answered is not None:
            one.answered = 1
            wait = max(0, flow.answered - flow.started)
            one.wait_ms = wait
            one.in_sla = int(wait <= self.sla_seconds * 1000)
            if flow.ended is not None and flow.ended >= flow.answered:
                one.talk_ms, one.talked = flow.ended - flow.answered, 1
        self.total.add(one, sign)
        for table, key in ((self.by_hotline, flow.hotline), (self.by_dest, flow.dest), (self.by_ext, flow.ext)):
            if key:
                table.setdefault(key, Counts()).add(one, sign)
        if flow.dest and flow.ext and sign > 0:
            self.dest_members.setdefault(flow.dest, set()).add(flow.ext)

    def teams(self, configured: Sequence[TeamSettings]) -> dict[str, frozenset[str]]:
        """Each team's extensions: the configured ones, else the ring groups seen today."""
        if configured:
            return {t.name: frozenset(t.extensions) for t in configured}
        return {dest: frozenset(exts) for dest, exts in sorted(self.dest_members.items())}

    def team_counts(self, name: str, members: frozenset[str], configured: bool) -> Counts:
        if not configured:
            return self.by_dest.get(name, Counts())
        total = Counts()
        for ext in members:
            counts = self.by_ext.get(ext)
            if counts is not None:
                total.add(counts, +1)
        return total


@dataclass(slots=True)
class _Live:
    """The live half of one group's figures."""

    waiting: int = 0
    longest_wait_since: int | None = None
    ringing: int = 0
    oncall: int = 0
    idle: int = 0
    wrapup: int = 0
    online: int = 0
    ringing_since: int | None = None  # the longest-ringing agent's start
    oncall_since: int | None = None  # the longest call's answer

    def agent(self, agent: Mapping[str, Any], wrapup_until: int | None, now: int) -> None:
        state = agent["state"]
        if state == "offline":
            return
        self.online += 1
        since = agent["since"]
        if state == "ringing":
            self.ringing += 1
            self.ringing_since = since if self.ringing_since is None else min(self.ringing_since, since)
        elif state == "oncall":
            self.oncall += 1
            self.oncall_since = since if self.oncall_since is None else min(self.oncall_since, since)
        elif wrapup_until is not None and wrapup_until > now:
            self.wrapup += 1
        else:
            self.idle += 1

    def leg(self, call: Mapping[str, Any]) -> None:
        """A hotline's leg ringing or answered at an agent."""
        if call["state"] == "answered":
            self.oncall += 1
            since = call["answered_at"] or call["started_at"]
            self.oncall_since = since if self.oncall_since is None else min(self.oncall_since, since)
        else:
            self.ringing += 1
            since = call["started_at"]
            self.ringing_since = since if self.ringing_since is None else min(self.ringing_since, since)

    def caller(self, since: int) -> None:
        self.waiting += 1
        if self.longest_wait_since is None or since < self.longest_wait_since:
            self.longest_wait_since = since

    def figures(self) -> dict[str, Any]:
        return {"waiting": self.waiting, "longest_wait_since": self.longest_wait_since, "ringing": self.ringing,
                "oncall": self.oncall, "idle": self.idle, "wrapup": self.wrapup, "online": self.online,
                "ringing_since": self.ringing_since, "oncall_since": self.oncall_since}


@dataclass(frozen=True, slots=True)
class Figures:
    """Every group's figures: `teams` and `hotlines` as screens get them, `whole` (the floor)
    for the thresholds only, and each team's members."""

    teams: dict[str, dict[str, Any]]
    hotlines: dict[str, dict[str, Any]]
    whole: dict[str, Any]
    members: dict[str, frozenset[str]]


def group_figures(day: GroupDay, configured: Sequence[TeamSettings], agents: Mapping[str, Mapping[str, Any]],
                  calls: Mapping[str, Mapping[str, Any]], wrapup: Mapping[str, int], now: int) -> Figures:
    members = day.teams(configured)
    team_of: dict[str, list[str]] = {}
    for name, exts in members.items():
        for ext in exts:
            team_of.setdefault(ext, []).append(name)
    teams = {name: _Live() for name in members}
    hotlines: dict[str, _Live] = {h: _Live() for h in day.by_hotline}
    whole = _Live()
    for ext, agent in agents.items():
        until = wrapup.get(ext)
        whole.agent(agent, until, now)
        for name in team_of.get(ext, ()):
            teams[name].agent(agent, until, now)
    # Callers waiting: inbound legs grouped by the caller's number, as stats.WaitingCallers
    # does; a caller waits on every team one of its legs rings and on its hotline.
    flows: dict[str, tuple[bool, int, set[str], set[str]]] = {}
    for call in calls.values():
        if call["direction"] != "inbound":
            continue
        key = call.get("from") or call["call_id"]
        answered, since, rung, lines = flows.get(key, (False, call["started_at"], set(), set()))
        if call.get("agent"):
            rung.add(call["agent"])
        if call.get("hotline"):
            lines.add(call["hotline"])
        flows[key] = (answered or call["state"] == "answered", min(since, call["started_at"]), rung, lines)
        hotline = call.get("hotline")
        if hotline:
            live = hotlines.setdefault(hotline, _Live())
            if call.get("agent"):
                live.leg(call)
    for answered, since, rung, lines in flows.values():
        if answered:
            continue
        whole.caller(since)
        for name in {n for ext in rung for n in team_of.get(ext, ())}:
            teams[name].caller(since)
        for line in lines:
            hotlines[line].caller(since)
    configured_names = bool(configured)
    team_json = {name: {**live.figures(), **day.team_counts(name, members[name], configured_names).figures(),
                        "extensions": sorted(members[name])}
                 for name, live in teams.items()}
    hotline_json = {line: {**live.figures(), **day.by_hotline.get(line, Counts()).figures()}
                    for line, live in hotlines.items()}
    return Figures(team_json, hotline_json, {**whole.figures(), **day.total.figures()}, members)
