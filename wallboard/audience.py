"""Who a screen is, as far as what it may be shown: its audience.

Every patch and snapshot is encoded once per audience, not once per screen:
- `supervisor`: numbers whole, and who is listening, whispering or barging (`monitors`);
- `whole`: numbers whole (display.mask_phone_numbers off), no monitors;
- `masked`: numbers masked (`0899***456`), no monitors — kiosks and viewers by default.
Silent monitoring stays silent on the wall: only supervisors learn of it. Internal merge
keys (a call's `flow`, which holds the caller's number) go to nobody.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Audience(StrEnum):
    SUPERVISOR = "supervisor"
    WHOLE = "whole"
    MASKED = "masked"

    @property
    def masked(self) -> bool:
        return self is Audience.MASKED

    @property
    def sees_monitors(self) -> bool:
        return self is Audience.SUPERVISOR


# Internal extensions are short and shown whole; only longer numbers are masked.
EXTENSION_MAX_LEN = 5
AGENT_FIELDS = ("peer",)
CALL_FIELDS = ("from", "to")
# The key that ties ring-group legs together; it holds the caller's number whole.
HIDDEN_CALL_FIELDS = frozenset({"flow"})
# Top-level keys only supervisors receive.
SUPERVISOR_KEYS = frozenset({"monitors", "alerts"})  # alerts: each channel's deliveries


def mask_number(number: str | None) -> str | None:
    if not number or len(number) <= EXTENSION_MAX_LEN:
        return number
    keep = 3 if len(number) >= 9 else 2
    return number[:4] + "***" + number[-keep:] if len(number) > 7 else number[:2] + "***" + number[-2:]


def _mask_fields(record: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """Mask those of `fields` the record (or partial record of an `upd`) carries."""
    return {**record, **{f: mask_number(record[f]) for f in fields if f in record}}


def screen_agent(agent: dict[str, Any], audience: Audience) -> dict[str, Any]:
    return _mask_fields(agent, AGENT_FIELDS) if audience.masked else agent


def screen_call(call: dict[str, Any], audience: Audience) -> dict[str, Any]:
    shown = {k: v for k, v in call.items() if k not in HIDDEN_CALL_FIELDS}
    return _mask_fields(shown, CALL_FIELDS) if audience.masked else shown


def screen_ops(ops: list[list[Any]], audience: Audience) -> list[list[Any]]:
    out = []
    for op in ops:
        if op[0] in ("set", "merge") and op[1] in SUPERVISOR_KEYS and not audience.sees_monitors:
            continue
        if op[0] in ("put", "upd") and op[1] == "calls":
            op = [*op[:3], screen_call(op[3], audience), *op[4:]]
        elif op[0] in ("put", "upd") and op[1] == "agents" and audience.masked:
            op = [*op[:3], screen_agent(op[3], audience), *op[4:]]
        out.append(op)
    return out


def screen_state(state: dict[str, Any], audience: Audience) -> dict[str, Any]:
    shown = {k: v for k, v in state.items() if audience.sees_monitors or k not in SUPERVISOR_KEYS}
    if not audience.sees_monitors:
        shown.update({key: [] if key == "monitors" else {} for key in SUPERVISOR_KEYS if key in state})
    shown["agents"] = [screen_agent(a, audience) for a in state["agents"]]
    shown["calls"] = [screen_call(c, audience) for c in state["calls"]]
    return shown
