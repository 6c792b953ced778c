"""The floor's figures per team and per hotline for /metrics (floor_metrics.py), with bounded
label sets: the configured `[[teams]]` (else the ring groups today's calls reached), and the
TOP_HOTLINES hotlines with the most calls today. Live figures (agents by state, callers
waiting, the longest wait) come from the live state at scrape time; today's (service level,
calls answered and missed) from the history's intervals (history/buckets.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from wallboard.history.buckets import Bucket, day_totals
from wallboard.history.recorder import Recorder

TOP_HOTLINES = 20
TOP_TEAMS = 50  # ring groups seen when no [[teams]] is configured: bounded too


@dataclass(slots=True)
class GroupLive:
    agents: dict[str, int] = field(default_factory=dict)  # state -> count (teams only)
    waiting: int = 0
    longest_since: int | None = None
    today: Bucket = field(default_factory=Bucket)

    def caller(self, since: int) -> None:
        self.waiting += 1
        self.longest_since = since if self.longest_since is None else min(self.longest_since, since)


def group_figures(recorder: Recorder, agents: Mapping[str, Mapping[str, Any]],
                  calls: Mapping[str, Mapping[str, Any]], now_ms: int
                  ) -> tuple[dict[str, GroupLive], dict[str, GroupLive]]:
    """(per team, per hotline), each bounded."""
    intervals = recorder.intervals
    day = datetime.fromtimestamp(now_ms / 1000, intervals.clock.zone).date().isoformat()
    totals = day_totals(intervals, day)
    members = intervals.members()
    if not intervals.teams:
        busiest = sorted(members, key=lambda t: -totals.get(("team", t), Bucket()).offered)[:TOP_TEAMS]
        members = {t: members[t] for t in sorted(busiest)}
    hotlines = sorted((g for k, g in totals if k == "hotline"),
                      key=lambda h: (-totals[("hotline", h)].offered, h))[:TOP_HOTLINES]
    teams = {name: GroupLive(agents=dict.fromkeys(("offline", "idle", "ringing", "oncall"), 0),
                             today=totals.get(("team", name), Bucket())) for name in members}
    lines = {h: GroupLive(today=totals[("hotline", h)]) for h in sorted(hotlines)}
    team_of: dict[str, list[str]] = {}
    for name, exts in members.items():
        for ext in exts:
            team_of.setdefault(ext, []).append(name)
    for ext, agent in agents.items():
        for name in team_of.get(ext, ()):
            state = agent.get("state", "offline")
            teams[name].agents[state] = teams[name].agents.get(state, 0) + 1
    # Callers waiting: inbound legs grouped by the caller's number (as stats.WaitingCallers),
    # on every team one of its legs rings and on its hotline.
    flows: dict[str, tuple[bool, int, set[str], set[str]]] = {}
    for call in calls.values():
        if call.get("direction") != "inbound":
            continue
        key = call.get("from") or call["call_id"]
        answered, since, rung, dialled = flows.get(key, (False, call["started_at"], set(), set()))
        if call.get("agent"):
            rung.add(call["agent"])
        if call.get("hotline"):
            dialled.add(call["hotline"])
        flows[key] = (answered or call.get("state") == "answered", min(since, call["started_at"]), rung, dialled)
    for answered, since, rung, dialled in flows.values():
        if answered:
            continue
        for name in {n for ext in rung for n in team_of.get(ext, ()) if n in teams}:
            teams[name].caller(since)
        for line in dialled:
            if line in lines:
                lines[line].caller(since)
    return teams, lines
