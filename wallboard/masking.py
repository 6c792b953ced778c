"""What a screen is shown of the state: phone numbers masked (`0899***456`) for kiosk
and viewer screens, and no internal merge keys for anyone."""

from __future__ import annotations

from typing import Any

# Internal extensions are short and shown whole; only longer numbers are masked.
EXTENSION_MAX_LEN = 5
AGENT_FIELDS = ("peer",)
CALL_FIELDS = ("from", "to")
# The key that ties ring-group legs together; it holds the caller's number whole.
HIDDEN_CALL_FIELDS = frozenset({"flow"})


def mask_number(number: str | None) -> str | None:
    if not number or len(number) <= EXTENSION_MAX_LEN:
        return number
    keep = 3 if len(number) >= 9 else 2
    return number[:4] + "***" + number[-keep:] if len(number) > 7 else number[:2] + "***" + number[-2:]


def _mask_fields(record: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """Mask those of `fields` the record (or partial record of an `upd`) carries."""
    return {**record, **{f: mask_number(record[f]) for f in fields if f in record}}


def screen_agent(agent: dict[str, Any], masked: bool) -> dict[str, Any]:
    return _mask_fields(agent, AGENT_FIELDS) if masked else agent


def screen_call(call: dict[str, Any], masked: bool) -> dict[str, Any]:
    shown = {k: v for k, v in call.items() if k not in HIDDEN_CALL_FIELDS}
    return _mask_fields(shown, CALL_FIELDS) if masked else shown


def screen_ops(ops: list[list[Any]], masked: bool) -> list[list[Any]]:
    out = []
    for op in ops:
        if op[0] in ("put", "upd") and op[1] == "calls":
            op = [*op[:3], screen_call(op[3], masked), *op[4:]]
        elif op[0] in ("put", "upd") and op[1] == "agents" and masked:
            op = [*op[:3], screen_agent(op[3], masked), *op[4:]]
        out.append(op)
    return out


def screen_state(state: dict[str, Any], masked: bool) -> dict[str, Any]:
    return {**state, "agents": [screen_agent(a, masked) for a in state["agents"]],
            "calls": [screen_call(c, masked) for c in state["calls"]]}
