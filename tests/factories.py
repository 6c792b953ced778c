"""Test data: PBX records and webhook events built from a few words."""

from __future__ import annotations

import itertools
from typing import Any

from wallboard.pbx.models import AgentRecord, CallRecord, StatusReport
from wallboard.pbx.times import PbxTime
from wallboard.state import CallEvent, LiveState

TZ = "Asia/Ho_Chi_Minh"
T0 = 1_764_288_000_000  # 2025-11-28 07:00 local
_ids = itertools.count(1)


def clock() -> PbxTime:
    return PbxTime(TZ)


def live(now: int = T0) -> LiveState:
    return LiveState(clock(), sla_seconds=20, now_ms=now)


def call_id() -> str:
    return f"call-{next(_ids):04d}"


def agent(ext: str = "1001", state: str = "", call_id: str = "", *, direction: str = "",
          peer: str = "", call_time: str = "", name: str | None = None) -> AgentRecord:
    return AgentRecord(ext=ext, name=name or f"Agent {ext}", username=f"u{ext}",
                       call_state={"ringing": "RINGING", "oncall": "ONCALL"}.get(state, state),
                       call_id=call_id, call_time=call_time, destination=peer, direction=direction,
                       user_agent="MicroSIP/3.20.6", network_ip="10.0.0.15",
                       domain_name="sim.tel4vn.com", extension_id="", user_id="")


def call(call_id: str, *, ext: str = "1001", direction: str = "inbound", number: str = "0899123456",
         state: str = "CS_ROUTING", created: str = "") -> CallRecord:
    inbound = direction == "inbound"
    return CallRecord(call_id=call_id, context="sim.tel4vn.com", created_time=created,
                      destination=ext if inbound else number, direction=direction, ip="1.2.3.4",
                      source=number if inbound else ext, state=state)


def event(state: str, call_id: str, *, ext: str = "1001", direction: str = "inbound",
          number: str = "0899123456", hotline: str = "19001919", at: int = T0, **extra: Any) -> CallEvent:
    inbound = direction == "inbound"
    return CallEvent(state=state, call_id=call_id, direction=direction,
                     from_number=number if inbound else ext, to_number=ext if inbound else number,
                     hotline=hotline, at=at, received=extra.pop("received", at), **extra)


def status(**counts: int) -> StatusReport:
    named = {k.upper().replace("_", " "): v for k, v in counts.items()}
    return StatusReport(counts=named, total=sum(named.values()))


def webhook_body(state: str = "ringing", call_id: str = "c-1", **fields: Any) -> dict[str, Any]:
    body = {"call_id": call_id, "sip_call_id": "sip-" + call_id, "domain": "sim.tel4vn.com",
            "direction": "inbound", "from_number": "0899123456", "to_number": "1001",
            "hotline": "19001919", "state": state}
    body.update(fields)
    return body
