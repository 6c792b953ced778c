"""The diff format sent to screens.

A patch is `{"type": "patch", "seq": N, "now": ms, "ops": [...]}`, the change from
`seq N-1` to `N`. Each op is a short JSON array:

    ["put", "agents", ext, {agent}]        a new agent, the whole record
    ["upd", "agents", ext, {field: value}] the fields of a known agent that changed
    ["del", "agents", ext]                 remove one agent
    ["put" | "upd" | "del", "calls", call_id, ...]   the same for calls
    ["set", key, value]                    replace a whole top-level value:
                                           "status", "stats", "sources", "monitors", "domain"
    ["merge", key, {k: value}]             the keys of a top-level object that changed ("stats")

Only what changed travels: an agent going from idle to ringing is its state, since,
call_id, direction and peer (~120 bytes) whatever the number of agents. Every op
says what a value *is*, never how it moved, so applying one twice (a patch after a
snapshot that already holds it) changes nothing. A client that gets `upd` for a
record it does not have has lost track and asks for a snapshot.

Encoded once per audience (numbers whole or masked), not once per screen. The
epoch is in the snapshot each connection starts with, so patches do not repeat it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from wallboard.frames import text_frame
from wallboard.masking import screen_ops

Op = list[Any]


def put_op(collection: str, key: str, record: dict[str, Any]) -> Op:
    return ["put", collection, key, record]


def del_op(collection: str, key: str) -> Op:
    return ["del", collection, key]


def upd_op(collection: str, key: str, fields: dict[str, Any]) -> Op:
    return ["upd", collection, key, fields]


def set_op(key: str, value: Any) -> Op:
    return ["set", key, value]


def merge_op(key: str, fields: dict[str, Any]) -> Op:
    return ["merge", key, fields]


def record_op(collection: str, key: str, old: dict[str, Any] | None, new: dict[str, Any]) -> list[Op]:
    """The op that takes a screen from `old` to `new`: nothing, the changed fields, or all."""
    if old is None or old.keys() - new.keys():
        return [put_op(collection, key, new)]
    fields = {k: v for k, v in new.items() if k not in old or old[k] != v}
    return [upd_op(collection, key, fields)] if fields else []


def object_op(key: str, old: dict[str, Any] | None, new: dict[str, Any]) -> list[Op]:
    """`record_op` for a top-level object: nothing, `merge` of the changed keys, or `set`."""
    if old is None or old.keys() - new.keys():
        return [set_op(key, new)]
    fields = {k: v for k, v in new.items() if k not in old or old[k] != v}
    return [merge_op(key, fields)] if fields else []


def compact(ops: list[Op]) -> list[Op]:
    """One op per target, in the order each target last changed, so a burst is one small patch.

    Later ops win; an `upd`/`merge` after a `put`/`upd`/`set`/`merge` of the same target
    folds its fields into it.
    """
    last: dict[tuple[str, ...], Op] = {}
    for op in ops:
        target = (op[1], op[2]) if op[0] in ("put", "upd", "del") else ("top", op[1])
        prev = last.pop(target, None)
        if prev is not None and op[0] in ("upd", "merge") and prev[0] in ("put", "upd", "set", "merge"):
            op = [*prev[:-1], {**prev[-1], **op[-1]}]
        last[target] = op
    return list(last.values())


@dataclass(slots=True)
class Patch:
    seq: int
    now: int
    ops: list[Op]
    _json: dict[bool, bytes] = field(default_factory=dict)
    _frames: dict[bool, bytes] = field(default_factory=dict)

    def json(self, masked: bool) -> bytes:
        """The JSON for one audience; computed once, shared by every screen."""
        body = self._json.get(masked)
        if body is None:
            ops = screen_ops(self.ops, masked)
            body = self._json[masked] = orjson.dumps(
                {"type": "patch", "seq": self.seq, "now": self.now, "ops": ops})
        return body

    def encoded(self, masked: bool) -> str:
        return self.json(masked).decode()

    def frame(self, masked: bool) -> bytes:
        """The whole WebSocket frame for one audience, for `frames.DirectLine`."""
        framed = self._frames.get(masked)
        if framed is None:
            framed = self._frames[masked] = text_frame(self.json(masked))
        return framed
