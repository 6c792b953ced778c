"""The board's watch over its figures: each team's and hotline's figures (groups.py), and
the level of every watched figure against its thresholds — for the floor, each team and
each hotline — with the incidents that alerts (alerts.py) tell the world of.

Figures watched, and what their levels hold (a level of 0 is none):
    waiting        callers waiting                       higher is worse
    longest_wait   seconds the longest caller waited     higher is worse
    service_level  percent answered within sla_seconds   lower is worse
    missed_rate    percent of today's inbound missed     higher is worse
    ringing        seconds the longest-ringing agent     higher is worse
    oncall         seconds of the longest call           higher is worse

Levels for a scope ("" the floor, "team:<name>", "hotline:<number>"), first found wins:
a supervisor's for that scope (stored, thresholds_store.py), the team's [[teams]] table,
a supervisor's for the floor, [thresholds].

Debounced: a figure must be past a level for `for_seconds` before the level shows (a
short peak never does), and it clears once back past the level by `clear_margin` of
it (no flicker at the line). Screens get `levels` = {scope: {figure: "warn"|"alarm"}}
(figures at ok are left out).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wallboard.groups import Figures, group_figures
from wallboard.patches import Op
from wallboard.settings import Settings
from wallboard.state import LiveState

FIGURES = ("waiting", "longest_wait", "service_level", "missed_rate", "ringing", "oncall")
LOWER_IS_WORSE = frozenset({"service_level"})
LEVELS = ("ok", "warn", "alarm")
WHOLE = ""
Levels = tuple[float, float]  # (warn, alarm); 0 is none


@dataclass(frozen=True, slots=True)
class Incident:
    """A figure that reached the alerting level (`started`), or left it (not `started`)."""

    scope: str
    figure: str
    level: str
    value: float | None
    limit: float
    started: bool
    at: int  # epoch ms
    since: int  # when it started


def value_of(figure: str, figures: Mapping[str, Any], now: int) -> float | None:
    """A watched figure's value from a group's figures (groups.py)."""
    if figure in ("longest_wait", "ringing", "oncall"):
        since = figures.get({"longest_wait": "longest_wait_since", "ringing": "ringing_since",
                             "oncall": "oncall_since"}[figure])
        return max(0.0, (now - since) / 1000) if since is not None else None
    value = figures.get(figure)
    return float(value) if value is not None else None


def _past(value: float, limit: float, lower_worse: bool, slack: float) -> bool:
    """`value` is past `limit`; `slack` (a fraction of it) moves the line back: a level
    held stays until the value is back past limit ∓ slack."""
    if lower_worse:
        return value <= limit * (1 + slack)
    return value >= limit * (1 - slack)


@dataclass(slots=True)
class _Watched:
    level: str = "ok"
    pending: str = "ok"
    pending_since: int = 0
    since: int = 0  # when the shown level began


@dataclass
class Watch:
    settings: Settings
    on_incident: Callable[[Incident], None] = lambda incident: None
    overrides: dict[tuple[str, str], Levels] = field(default_factory=dict)  # (scope, figure) -> a supervisor's
    members: dict[str, frozenset[str]] = field(default_factory=dict)
    figures: Figures | None = None
    _watched: dict[tuple[str, str], _Watched] = field(default_factory=dict)

    def levels_for(self, scope: str, figure: str) -> Levels:
        found = self.overrides.get((scope, figure))
        if found is not None:
            return found
        if scope.startswith("team:"):
            team = next((t for t in self.settings.teams if t.name == scope[5:]), None)
            own = dict(team.thresholds) if team else {}
            if f"{figure}_warn" in own or f"{figure}_alarm" in own:
                base = self.levels_for(WHOLE, figure)
                return own.get(f"{figure}_warn", base[0]), own.get(f"{figure}_alarm", base[1])
        found = self.overrides.get((WHOLE, figure))
        if found is not None:
            return found
        th = self.settings.thresholds
        return getattr(th, f"{figure}_warn"), getattr(th, f"{figure}_alarm")

    def refresh(self, live: LiveState, now: int) -> list[Op]:
        """Figures and levels now: the ops that tell screens what changed."""
        figures = group_figures(live.day_groups, self.settings.teams, live.agents, live.calls,
                                live.board["wrapup"], now)
        self.figures = figures
        if figures.members != self.members:
            self.members = figures.members
        ops = live.put_board("teams", figures.teams) + live.put_board("hotlines", figures.hotlines)
        scopes: list[tuple[str, Mapping[str, Any]]] = [(WHOLE, figures.whole)]
        scopes += [(f"team:{name}", f) for name, f in figures.teams.items()]
        scopes += [(f"hotline:{line}", f) for line, f in figures.hotlines.items()]
        levels: dict[str, dict[str, str]] = {}
        for scope, group in scopes:
            for figure in FIGURES:
                level = self._level(scope, figure, value_of(figure, group, now), now)
                if level != "ok":
                    levels.setdefault(scope, {})[figure] = level
        known = {scope for scope, _ in scopes}
        for key in [k for k in self._watched if k[0] not in known]:
            del self._watched[key]  # a team or hotline gone (a new day)
        return ops + live.put_board("levels", levels)

    def _level(self, scope: str, figure: str, value: float | None, now: int) -> str:
        warn, alarm = self.levels_for(scope, figure)
        key = (scope, figure)
        w = self._watched.get(key)
        if w is None:
            if value is None:
                return "ok"
            w = self._watched[key] = _Watched()
        lower = figure in LOWER_IS_WORSE
        margin = self.settings.thresholds.clear_margin
        target = "ok"
        if value is not None:
            held = LEVELS.index(w.level)
            if alarm and _past(value, alarm, lower, margin if held >= 2 else 0.0):
                target = "alarm"
            elif warn and _past(value, warn, lower, margin if held >= 1 else 0.0):
                target = "warn"
        if LEVELS.index(target) < LEVELS.index(w.level):
            # Down at once: the margin is its debounce.
            self._move(w, scope, figure, target, value, (warn, alarm), now)
        elif LEVELS.index(target) > LEVELS.index(w.level):
            if w.pending != target:
                w.pending, w.pending_since = target, now
            if now - w.pending_since >= self.settings.thresholds.for_seconds * 1000:
                self._move(w, scope, figure, target, value, (warn, alarm), now)
        else:
            w.pending, w.pending_since = target, now
        return w.level

    def _move(self, w: _Watched, scope: str, figure: str, level: str, value: float | None, limits: Levels,
              now: int) -> None:
        alerting = LEVELS.index(self.settings.alerts.level)
        was, w.level = LEVELS.index(w.level), level
        w.pending, w.pending_since = level, now
        now_at = LEVELS.index(level)
        if was < alerting <= now_at:
            w.since = now
            self.on_incident(Incident(scope, figure, level, value, limits[alerting - 1], True, now, now))
        elif now_at < alerting <= was:
            self.on_incident(Incident(scope, figure, level, value, limits[alerting - 1], False, now, w.since))
