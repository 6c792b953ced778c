"""A screen narrowed to one team or one hotline (`?team=` / `?hotline=`, SPEC section 8),
and the filter that gives it only what concerns it — where patches are published, not on
the way out of the browser.

- A team's screen holds the team's agents and the calls they ring or take, its own
  entry of `teams`, its levels, its wrap-ups and the wall's messages for all or for it.
- A hotline's screen holds every agent, the calls of that hotline, its own entry of
  `hotlines`, its levels and the wall's messages for all.
Neither holds the floor's `stats` or `status` (the team's own figures stand in for them).

A patch is narrowed once per (audience, view) that has screens (hub.py). One that leaves
nothing for a view is not sent to it at all: fewer bytes and fewer wake-ups. The next one
says `after`, the seq of the last one the view was sent, so a screen can tell "nothing of
mine changed between" from a gap (store.js, apply.py).

The engine notes at commit what each call op's call was (its record: records are replaced,
never changed in place) and each team's members, so narrowing later needs no state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams

from wallboard.patches import Op

# Keys a narrowed screen does not get: the floor's figures.
FLOOR_KEYS = frozenset({"stats", "status"})
MAX_NAME = 40


@dataclass(frozen=True, slots=True)
class View:
    kind: str  # "team" or "hotline"
    name: str

    @property
    def scope(self) -> str:
        """The key of its levels (watch.py): "team:<name>" or "hotline:<number>"."""
        return f"{self.kind}:{self.name}"


def view_of(query: QueryParams) -> View | None:
    """`?team=` or `?hotline=` (the first that is set), None for the whole board."""
    for kind in ("team", "hotline"):
        name = query.get(kind, "").strip()
        if name and len(name) <= MAX_NAME and all(ch.isprintable() for ch in name):
            return View(kind, name)
    return None


@dataclass(frozen=True, slots=True)
class Noted:
    """What narrowing needs to know of a committed patch: each call op's call (for a `del`,
    the call as it was) and each team's members at commit."""

    calls: Mapping[str, Mapping[str, Any]]
    members: Mapping[str, frozenset[str]]
    members_changed: frozenset[str]  # teams whose members differ from the previous patch's


class Narrowing:
    """The engine's notes for narrowing, kept from patch to patch: the calls screens hold
    (for the `del` of one, what it was) and the members each team had at the last patch."""

    def __init__(self) -> None:
        self._calls: dict[str, Mapping[str, Any]] = {}
        self._members: Mapping[str, frozenset[str]] = {}

    def note(self, ops: list[Op], calls: Mapping[str, Mapping[str, Any]],
             members: Mapping[str, frozenset[str]]) -> Noted:
        """Called at each commit with the patch's ops and the state just after them."""
        noted: dict[str, Mapping[str, Any]] = {}
        for op in ops:
            if op[1] != "calls":
                continue
            if op[0] == "del":
                was = self._calls.pop(op[2], None)
                if was is not None:
                    noted[op[2]] = was
            elif op[2] in calls:
                noted[op[2]] = self._calls[op[2]] = calls[op[2]]
        changed = frozenset(name for name in members.keys() | self._members.keys()
                            if members.get(name) != self._members.get(name))
        self._members = members
        return Noted(noted, members, changed)

    def forget(self) -> None:
        """A new line (a new state): nothing is held any more."""
        self._calls.clear()
        self._members = {}


def _keeps_call(call: Mapping[str, Any] | None, view: View, members: frozenset[str]) -> bool:
    if call is None:
        return False
    if view.kind == "team":
        return call.get("agent") in members
    return call.get("hotline") == view.name


def _keeps_message(message: Any, view: View) -> bool:
    team = message.get("team") if isinstance(message, dict) else None
    return team is None or (view.kind == "team" and team == view.name)


def _narrow_top(key: str, value: Any, view: View, members: frozenset[str]) -> Any:
    """The part of a top-level value a view holds (a dict for the board's own keys)."""
    if key == "teams":
        return {k: v for k, v in value.items() if view.kind == "team" and k == view.name}
    if key == "hotlines":
        return {k: v for k, v in value.items() if view.kind == "hotline" and k == view.name}
    if key == "levels":
        return {k: v for k, v in value.items() if k == view.scope}
    if key == "wrapup" and view.kind == "team":
        return {k: v for k, v in value.items() if k in members}
    if key == "wall":
        return {k: v for k, v in value.items() if _keeps_message(v, view)}
    return value


def narrow_ops(ops: list[Op], noted: Noted, view: View) -> list[Op] | None:
    """The ops of a patch a view's screens get; None when they must be sent a snapshot
    instead (the team's members changed)."""
    if view.name in noted.members_changed:
        return None
    members = noted.members.get(view.name, frozenset()) if view.kind == "team" else frozenset()
    out: list[Op] = []
    for op in ops:
        kind, where = op[0], op[1]
        if kind in ("set", "merge"):
            if where in FLOOR_KEYS:
                continue
            value = _narrow_top(where, op[2], view, members)
            if kind == "merge" and not value:
                continue
            out.append([kind, where, value])
        elif where == "agents":
            if view.kind == "hotline" or op[2] in members:
                out.append(op)
        elif where == "calls":
            call = noted.calls.get(op[2])
            if not _keeps_call(call, view, members):
                continue
            if kind == "upd" and view.kind == "hotline" and call is not None:
                # A call first seen by a poll learns its hotline later: the screen may not hold it.
                op = ["put", "calls", op[2], dict(call), *op[4:]]
            out.append(op)
        else:
            out.append(op)
    return out


def narrow_state(state: dict[str, Any], view: View, members: Mapping[str, frozenset[str]]) -> dict[str, Any]:
    """A snapshot's state as a view's screens hold it."""
    team = members.get(view.name, frozenset()) if view.kind == "team" else frozenset()
    shown = dict(state)
    for key in FLOOR_KEYS:
        shown[key] = None
    for key in ("teams", "hotlines", "levels", "wrapup", "wall"):
        if key in shown:
            shown[key] = _narrow_top(key, shown[key], view, team)
    if view.kind == "team":
        shown["agents"] = [a for a in state["agents"] if a["ext"] in team]
    shown["calls"] = [c for c in state["calls"] if _keeps_call(c, view, team)]
    return shown
