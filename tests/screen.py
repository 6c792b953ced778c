"""A screen's copy of the state, kept from snapshot and patch messages as
static/js/store.js keeps it: the oracle that says a patch stream is enough."""

from __future__ import annotations

from typing import Any

from wallboard.apply import TOP_KEYS
from wallboard.patches import IDLE, KEY_FIELD, follows


class ScreenCopy:
    def __init__(self, snapshot: dict[str, Any]) -> None:
        assert snapshot["type"] == "snapshot"
        self.fields: dict[str, list[str]] = snapshot["fields"]
        state = snapshot["state"]
        self.seq: int = snapshot["seq"]
        self.agents = {a["ext"]: a for a in state["agents"]}
        self.calls = {c["call_id"]: c for c in state["calls"]}
        self.top = {k: state[k] for k in TOP_KEYS if k in state}

    def patch(self, message: dict[str, Any]) -> None:
        assert message["type"] == "patch" and message["seq"] == self.seq + 1, (message["seq"], self.seq)
        for op in message["ops"]:
            self.apply(op)
        self.seq = message["seq"]

    def apply(self, op: list[Any]) -> None:
        kind, where = op[0], op[1]
        if kind == "set":
            self.top[where] = op[2]
            return
        if kind == "merge":
            self.top[where] = {**self.top[where], **op[2]}
            return
        records = self.agents if where == "agents" else self.calls
        key = op[2]
        if kind == "put":
            value = op[3]
            if isinstance(value, list):
                names = self.fields[where]
                assert len(value) <= len(names)
                value = {KEY_FIELD[where]: key, **dict.fromkeys(names), **dict(zip(names, value, strict=False))}
            records[key] = value
        elif kind == "upd":
            records[key] = {**records[key], **op[3]}  # KeyError: the screen lost track
        else:
            old = records.pop(key, None)
            if where == "calls" and len(op) > 3:
                assert old is not None, f"the end of call {key} carries its agent, and this screen lacks the call"
                self._set_agent(old["agent"], dict(IDLE, since=op[3]))
            return
        if where == "calls" and op[4:] == [1]:
            self._set_agent(records[key]["agent"], follows(records[key]))

    def heard(self, at: dict[str, int | None]) -> None:
        """A ping: each source's last success."""
        sources = self.top["sources"]
        self.top["sources"] = {k: {**v, "at": at[k]} if at.get(k) and k in at else v for k, v in sources.items()}

    def _set_agent(self, ext: str, fields: dict[str, Any]) -> None:
        self.agents[ext] = {**self.agents[ext], **fields}

    def state(self) -> dict[str, Any]:
        """Comparable with a snapshot's state (see `comparable`)."""
        return _without_hook_counters({"agents": self.agents, "calls": self.calls, **self.top})


def comparable(state: dict[str, Any]) -> dict[str, Any]:
    """A snapshot's state with lists as dicts by key, less the webhook counters: they
    move with every webhook and travel in snapshots only (no screen shows them)."""
    return _without_hook_counters({"agents": {a["ext"]: a for a in state["agents"]},
                                   "calls": {c["call_id"]: c for c in state["calls"]},
                                   **{k: state[k] for k in TOP_KEYS if k in state}})


def _without_hook_counters(state: dict[str, Any]) -> dict[str, Any]:
    return {**state, "sources": {k: v for k, v in state["sources"].items() if k != "webhooks"}}
