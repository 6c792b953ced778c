"""A screen's copy of the state in Python, kept from the messages a screen gets with
exactly the semantics of `static/js/store.js` (the format is `patches.py`'s).

    copy = Replica.from_snapshot(message)   # {"type": "snapshot", "seq", "fields", "state"}
    copy.patch(message)                     # {"type": "patch", "seq", "ops"}: True, or False if old
    copy.heard(ping["at"])                  # a ping: each source's last success
    copy.state()                            # the state as the screen holds it

Where store.js would answer "gap" and ask for a snapshot, this raises `LostTrack`,
and the copy is left as it was (store.js's is moot until the snapshot comes). Records
are kept by key, in the order store.js's Maps keep them. Values come from JSON, and
the few places store.js leans on JavaScript (truthiness, `String(key)`, `===`) are
written out so that any op, however odd, does here what it does there; where
JavaScript would read `undefined`, this reads None.

tests/test_apply.py drives store.js (in node) and this with the same patch streams
and holds both to the server's snapshot at every seq.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from wallboard.patches import IDLE, KEY_FIELD, Op, follows

# The top-level values `set` and `merge` replace (the snapshot's keys less its identity
# and the two collections); store.js ignores those ops for any other key.
BOARD_KEYS = ("teams", "hotlines", "levels", "wall", "alerts", "wrapup")  # state.py BOARD_KEYS
TOP_KEYS = ("status", "stats", "sources", "monitors", "domain", *BOARD_KEYS)
COLLECTIONS = tuple(KEY_FIELD)


class LostTrack(Exception):
    """A patch this copy cannot apply: store.js would ask for a fresh snapshot."""


def apply_ops(state: Mapping[str, Any], ops: Sequence[Op], fields: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The state after `ops`, as store.js applies them; `state` is left as it was.

    `state` holds "agents" and "calls" as dicts by key and the TOP_KEYS values;
    `fields` is the snapshot's order of positional records.
    """
    out = {**state, "agents": dict(state["agents"]), "calls": dict(state["calls"])}
    for op in ops:
        _apply(out, op, fields)
    return out


@dataclass
class Replica:
    seq: int | float  # a JSON number, as in store.js
    epoch: str | None
    fields: Mapping[str, Sequence[str]]
    values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_snapshot(cls, message: Mapping[str, Any]) -> Replica:
        """As main.js hands a snapshot to `Store.snapshot` (one without a seq, after which
        store.js would take no patch, raises LostTrack at once)."""
        state = message.get("state") or {}
        seq = message["seq"] if message.get("seq") is not None else state.get("seq")
        if not _is_number(seq):
            raise LostTrack(f"snapshot with seq {seq!r}")
        values = {
            "agents": {_key_of(a, "ext"): a for a in state.get("agents") or []},
            "calls": {_key_of(c, "call_id"): c for c in state.get("calls") or []},
            "status": _or(state.get("status"), None),
            "stats": _or(state.get("stats"), None),
            "sources": _or(state.get("sources"), {}),
            "domain": _or(state.get("domain"), ""),
            "monitors": _or(state.get("monitors"), []),
            **{key: _or(state.get(key), {}) for key in BOARD_KEYS},
        }
        return cls(seq, state.get("epoch"), _or(message.get("fields"), {}), values)

    def patch(self, message: Mapping[str, Any]) -> bool:
        """Apply a patch message: True, or False for one already held (store.js 'old')."""
        epoch = message.get("epoch")
        if epoch is not None and self.epoch is not None and not _same(epoch, self.epoch):
            raise LostTrack(f"patch of epoch {epoch}, the snapshot's is {self.epoch}")
        seq = message.get("seq")
        if not _is_number(seq):
            raise LostTrack(f"patch with seq {seq!r}")
        if seq <= self.seq:
            return False
        # A screen narrowed to a team or hotline is sent only the patches that concern it:
        # `after` is the seq of the one before, and whatever came between changed nothing of its.
        after = message.get("after")
        if seq != self.seq + 1 and not (_is_number(after) and after <= self.seq):
            raise LostTrack(f"patch {seq} after {self.seq}: a gap")
        self.values = apply_ops(self.values, message.get("ops") or [], self.fields)
        self.seq = seq
        return True

    def heard(self, at: Mapping[str, Any] | None) -> None:
        """A ping's word on when each source last answered (`Store.heard`)."""
        if not at:
            return
        sources = self.values["sources"]
        for name, when in at.items():
            src = sources.get(name) if isinstance(sources, dict) else None
            if _truthy(src) and _truthy(when) and not _same(_get(src, "at"), when):
                if sources is self.values["sources"]:
                    sources = dict(sources)
                sources[name] = {**_spread(src), "at": when}
        self.values["sources"] = sources

    def state(self) -> dict[str, Any]:
        """"agents" and "calls" as dicts by key, and the TOP_KEYS values."""
        return {**self.values, "agents": dict(self.values["agents"]), "calls": dict(self.values["calls"])}


def _apply(state: dict[str, Any], op: Op, fields: Mapping[str, Sequence[str]]) -> None:
    kind, where, key, value = (op[i] if i < len(op) else None for i in range(4))
    if kind in ("set", "merge"):
        if not isinstance(where, str) or where not in TOP_KEYS:
            return
        if kind == "merge":
            if not _truthy(state[where]):
                raise LostTrack(f"merge into {where}, which this copy does not hold")
            state[where] = {**_spread(state[where]), **_spread(key)}
        else:
            state[where] = _or(key, []) if where == "monitors" else key
        return
    if not isinstance(where, str) or where not in COLLECTIONS:
        return
    records: dict[str, Any] = state[where]
    id_ = _js_string(key) if len(op) > 2 else "undefined"
    if kind == "put":
        record = _record(where, id_, value, fields)
        if not _truthy(record):
            raise LostTrack(f"put of {where} {id_} without a record this copy can read")
        records[id_] = record
    elif kind == "upd":
        old = records.get(id_)
        if old is None:
            raise LostTrack(f"upd of {where} {id_}, which this copy does not hold")
        records[id_] = {**_spread(old), **_spread(value)}
    elif kind == "del":
        old = records.pop(id_, None)
        # The call's end carries its agent: without the call, this copy has lost track.
        if where == "calls" and _is_number(value) and not (old is not None and _set_agent(
                state, _get(old, "agent"), {**IDLE, "since": value})):
            raise LostTrack(f"the end of call {id_} carries its agent, and this copy lacks one of them")
        return
    else:
        return
    flag = op[4] if len(op) > 4 else None
    if where == "calls" and _is_number(flag) and flag == 1:
        call = records[id_]
        if not _set_agent(state, _get(call, "agent"), follows(_Record(_spread(call)))):
            raise LostTrack(f"call {id_} says its agent follows it, and this copy lacks the agent")


def _record(where: str, key: str, value: Any, fields: Mapping[str, Sequence[str]]) -> Any:
    """A positional record (a list) as a dict, in the order the snapshot gave."""
    if not isinstance(value, list):
        return value
    names = fields.get(where) if isinstance(fields, Mapping) else None
    if names is None or not _truthy(names):
        return None
    record: dict[str, Any] = {KEY_FIELD[where]: key}
    for i, name in enumerate(names):
        record[_js_string(name)] = value[i] if i < len(value) else None
    return record


def _set_agent(state: dict[str, Any], ext: Any, changes: dict[str, Any]) -> bool:
    agents: dict[str, Any] = state["agents"]
    old = agents.get(_js_string(ext)) if ext is not None else None
    if old is None:
        return False
    agents[_js_string(ext)] = {**_spread(old), **changes}
    return True


class _Record(dict[str, Any]):
    """A record read as JavaScript reads an object: a field it lacks is undefined (None)."""

    def __missing__(self, key: str) -> None:
        return None


# ---- JavaScript's rules, for values that came from JSON ------------------------------

def _truthy(value: Any) -> bool:
    if value is None or value is False or value == "":
        return False
    if _is_number(value):
        return value != 0 and not math.isnan(value)
    return True  # objects and arrays, even empty ones


def _or(value: Any, default: Any) -> Any:
    return value if _truthy(value) else default


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """`a === b`: an object or array is only itself; a number is never a boolean."""
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return a is b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    return type(a) is type(b) and a == b


def _key_of(record: Any, name: str) -> str:
    """`String(record[name])` for a snapshot's record."""
    return _js_string(record[name]) if isinstance(record, dict) and name in record else "undefined"


def _js_string(value: Any) -> str:
    """`String(value)`, for the keys a patch may carry."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def _spread(value: Any) -> dict[str, Any]:
    """`{...value}`: an object's own fields; an array's or a string's by index; else nothing."""
    if isinstance(value, dict):
        return value
    if isinstance(value, list | str):
        return {str(i): v for i, v in enumerate(value)}
    return {}


def _get(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else None
