"""The diff format sent to screens.

A patch is `{"type": "patch", "seq": N, "epoch": E, "now": ms, "ops": [...]}`, the
change from `seq N-1` to `N`. Each op is a short JSON array:

    ["put", "agents", ext, {agent}]      insert or replace one agent record
    ["del", "agents", ext]               remove one agent
    ["put", "calls", call_id, {call}]    insert or replace one call
    ["del", "calls", call_id]
    ["set", key, value]                  replace a whole top-level value:
                                         "status", "stats", "sources", "monitors", "domain"

Whole records, keyed: a one-agent change costs one agent record (~250 bytes)
whatever the number of agents, and a client applies it without knowing history.
Encoded once per audience (numbers whole or masked), not once per screen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from wallboard.masking import mask_ops

Op = list[Any]


def put_op(collection: str, key: str, record: dict[str, Any]) -> Op:
    return ["put", collection, key, record]


def del_op(collection: str, key: str) -> Op:
    return ["del", collection, key]


def set_op(key: str, value: Any) -> Op:
    return ["set", key, value]


def compact(ops: list[Op]) -> list[Op]:
    """Keep only the last op per target, in first-seen order, so a burst is one small patch."""
    last: dict[tuple[str, ...], Op] = {}
    for op in ops:
        target = (op[1], op[2]) if op[0] in ("put", "del") else ("set", op[1])
        last.pop(target, None)
        last[target] = op
    return list(last.values())


@dataclass(slots=True)
class Patch:
    seq: int
    epoch: str
    now: int
    ops: list[Op]
    _encoded: dict[bool, str] = field(default_factory=dict)

    def encoded(self, masked: bool) -> str:
        """The JSON text for one audience; computed once, shared by every screen."""
        text = self._encoded.get(masked)
        if text is None:
            ops = mask_ops(self.ops) if masked else self.ops
            text = orjson.dumps(
                {"type": "patch", "seq": self.seq, "epoch": self.epoch, "now": self.now, "ops": ops}
            ).decode()
            self._encoded[masked] = text
        return text
