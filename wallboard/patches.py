"""The diff format sent to screens.

A patch is `{"type": "patch", "seq": N, "ops": [...]}`, the change from `seq N-1` to
`N`. Each op is a short JSON array:

    ["put", "agents", ext, [values]]       a new agent, its values in the order of
                                           `fields.agents` (trailing nulls left out)
    ["put", "agents", ext, {agent}]        the same with names, for a record of other shape
    ["upd", "agents", ext, {field: value}] the fields of a known agent that changed
    ["del", "agents", ext]                 remove one agent
    ["put" | "upd" | "del", "calls", call_id, ...]   the same for calls
    ["set", key, value]                    replace a whole top-level value:
                                           "status", "stats", "sources", "monitors", "domain"
    ["merge", key, {k: value}]             the keys of a top-level object that changed ("stats")

An agent on a call shows the call: its state, since, call_id, direction and peer follow
from the call record (`follows`). When that is exactly the agent's change, the agent op
is left out and the call op says so:

    ["put" | "upd", "calls", call_id, ..., 1]   ...and the call's agent takes `follows(call)`
    ["del", "calls", call_id, t]                ...and the call's agent is idle since t

so a call ringing an agent is one op, not two. The snapshot message (`{"type":
"snapshot", "seq", "fields", "state"}`) carries `fields`, the order of positional records.
Patches carry no clock: the snapshot and the pings do.

Only what changed travels, and every op says what a value *is*, never how it moved,
so applying one twice (a patch after a snapshot that already holds it) changes
nothing. A client that gets `upd`, a call op for an agent, or the end of a call with
its agent, for a record it does not have, has lost track and asks for a snapshot: a
snapshot always shows exactly its seq (the pending batch is sent first), and only a call
committed before the batch can carry its agent on its `del`.

Encoded once per audience (`audience.py`, by the engine), not once per screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wallboard.version import build

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


# The order of positional records; nullable fields last, so trailing nulls can go.
WIRE_FIELDS: dict[str, tuple[str, ...]] = {
    "agents": ("name", "state", "since", "username", "user_agent", "network_ip",
               "answered_today", "talk_today", "direction", "peer", "call_id"),
    "calls": ("agent", "from", "to", "direction", "state", "started_at", "hotline", "answered_at"),
}
KEY_FIELD = {"agents": "ext", "calls": "call_id"}
FOLLOW_FIELDS = frozenset({"state", "since", "call_id", "direction", "peer"})
IDLE = {"state": "idle", "call_id": None, "direction": None, "peer": None}


def follows(call: dict[str, Any]) -> dict[str, Any]:
    """The fields of an agent on `call`, as the call shows them (`state.py` sets them so)."""
    answered = call["state"] == "answered"
    return {"state": "oncall" if answered else "ringing",
            "since": call["answered_at"] if answered else call["started_at"],
            "call_id": call["call_id"], "direction": call["direction"],
            "peer": call["from"] if call["direction"] == "inbound" else call["to"]}


def fold_agents(ops: list[Op], agents: dict[str, dict[str, Any]], calls: dict[str, dict[str, Any]],
                ended: dict[str, str]) -> list[Op]:
    """Leave out the agent ops a screen can tell from the call ops beside them.

    `ops` are compacted (one per target) and `agents`/`calls` the state after them;
    `ended` is call_id -> the agent its end left idle, for calls screens already hold
    (one that began in this batch compacts to a bare `del`). An agent op goes only when it
    changes nothing but FOLLOW_FIELDS and the agent's record then equals what the call
    op implies, so a screen that applies the folded form holds exactly the state.
    """
    agent_ops = {op[2]: i for i, op in enumerate(ops) if op[1] == "agents" and op[0] == "upd"}
    if not agent_ops:
        return ops
    out = list(ops)
    dropped: set[int] = set()
    for i, op in enumerate(ops):
        if op[1] != "calls":
            continue
        if op[0] == "del":
            ext = ended.get(op[2])
            implied = dict(IDLE, since=agents[ext]["since"]) if ext in agents else None
        else:
            call = calls.get(op[2])
            ext = call.get("agent") if call else None
            implied = follows(call) if call and ext in agents else None
        j = agent_ops.get(ext) if ext else None
        if implied is None or j is None or j in dropped or not ops[j][3].keys() <= FOLLOW_FIELDS:
            continue
        agent = agents[ext]  # type: ignore[index]
        if all(agent[k] == v for k, v in implied.items()):
            out[i] = [*op, implied["since"] if op[0] == "del" else 1]
            dropped.add(j)
    return [op for i, op in enumerate(out) if i not in dropped]


def positional(ops: list[Op]) -> list[Op]:
    """`put` records of the usual shape as value lists in WIRE_FIELDS order."""
    out = []
    for op in ops:
        if op[0] == "put":
            names = WIRE_FIELDS[op[1]]
            record = op[3]
            if len(record) == len(names) + 1 and KEY_FIELD[op[1]] in record and all(n in record for n in names):
                values = [record[n] for n in names]
                while values and values[-1] is None:
                    values.pop()
                op = [*op[:3], values, *op[4:]]
        out.append(op)
    return out


def snapshot_message(seq: int, state: dict[str, Any]) -> dict[str, Any]:
    """The first message a screen gets, and again on every resync; `epoch` and `seq` say
    where a screen that comes back resumes from (`/ws?epoch=E&seq=N`)."""
    return {"type": "snapshot", "epoch": state.get("epoch"), "seq": seq, "fields": WIRE_FIELDS, "state": state,
            "version": build()}


@dataclass(slots=True)
class Patch:
    seq: int
    ops: list[Op]  # compacted: what changed
    wire: list[Op] | None = None  # the same for screens, agent ops folded (`fold_agents`)
