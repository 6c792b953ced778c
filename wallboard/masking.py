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
    return {**agent, **{f: mask_number(agent.get(f)) for f in AGENT_FIELDS}}


def mask_call(call: dict[str, Any]) -> dict[str, Any]:
    return {**call, **{f: mask_number(call.get(f)) for f in CALL_FIELDS}}


def mask_ops(ops: list[list[Any]]) -> list[list[Any]]:
    out = []
    for op in ops:
        if op[0] == "put" and op[1] == "agents":
            op = [*op[:3], mask_agent(op[3])]
        elif op[0] == "put" and op[1] == "calls":
            op = [*op[:3], mask_call(op[3])]
        out.append(op)
    return out


def mask_state(state: dict[str, Any]) -> dict[str, Any]:
    return {**state, "agents": [mask_agent(a) for a in state["agents"]],
            "calls": [mask_call(c) for c in state["calls"]]}
