"""Phone numbers as kiosk and viewer screens see them: `0899***456`."""

from __future__ import annotations

from typing import Any

# Internal extensions are short and shown whole; only longer numbers are masked.
EXTENSION_MAX_LEN = 5
AGENT_FIELDS = ("peer",)
CALL_FIELDS = ("from", "to")


def mask_number(number: str | None) -> str | None:
    if not number or len(number) <= EXTENSION_MAX_LEN:
        return number
    keep = 3 if len(number) >= 9 else 2
    return number[:4] + "***" + number[-keep:] if len(number) > 7 else number[:2] + "***" + number[-2:]


def mask_agent(agent: dict[str, Any]) -> dict[str, Any]:
    return _mask_fields(agent, AGENT_FIELDS)


def mask_call(call: dict[str, Any]) -> dict[str, Any]:
    return _mask_fields(call, CALL_FIELDS)


def _mask_fields(record: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """Mask those of `fields` the record (or partial record of an `upd`) carries."""
    return {**record, **{f: mask_number(record[f]) for f in fields if f in record}}


def mask_ops(ops: list[list[Any]]) -> list[list[Any]]:
    out = []
    for op in ops:
        if op[0] in ("put", "upd") and op[1] in ("agents", "calls"):
            op = [*op[:3], _mask_fields(op[3], AGENT_FIELDS if op[1] == "agents" else CALL_FIELDS)]
        out.append(op)
    return out


def mask_state(state: dict[str, Any]) -> dict[str, Any]:
    return {**state, "agents": [mask_agent(a) for a in state["agents"]],
            "calls": [mask_call(c) for c in state["calls"]]}
