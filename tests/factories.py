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


def web_parts(settings: Any, **parts: Any) -> Any:
    """`web.context.Parts` for a test app built around some of the real routes, with fakes
    where a test does not need the real part."""
    from wallboard.principal import Auth
    from wallboard.ratelimit import RateLimiter
    from wallboard.sessions import SessionKeeper
    from wallboard.tenancy import Parts

    values: dict[str, Any] = {"engine": None, "hub": None, "pbx": None, "audit": None, "metrics": None, "keeper": None,
                              "templates": None, "action_limiter": RateLimiter(60.0)}
    values.update(parts)
    values.setdefault("auth", None)
    if values["auth"] is None:
        values["auth"] = Auth(settings)
    if values["keeper"] is None:
        values["keeper"] = SessionKeeper(values["auth"], values["pbx"], values["hub"],
                                         recheck_seconds=settings.auth.recheck_minutes * 60)
    return Parts(settings=settings, **values)


def audience(masked: bool) -> Any:
    """The audience of a screen that sees numbers masked, or whole (a supervisor's)."""
    from wallboard.audience import Audience

    return Audience.MASKED if masked else Audience.SUPERVISOR


def patch_json(patch: Any, masked: bool) -> bytes:
    """A committed patch as that audience receives it, encoded by the engine."""
    from wallboard.engine import encode

    return encode("test", patch).payloads[audience(masked)]


class Running:
    """The parts of an app made by `create_app` that tests poke at, under short names."""

    def __init__(self, app: Any) -> None:
        from wallboard.app import parts_of

        self.parts = parts = parts_of(app)
        self.engine = parts.engine
        self.hub = parts.hub
        self.pbx = parts.pbx
        self.metrics = parts.metrics
        self.live = parts.engine.live
        self.poller = parts.engine.poller
        self.publish = parts.engine.publish
        self.flush = parts.engine.flush

    @property
    def hooks_registered(self) -> dict[str, str] | None:
        return self.engine.hooks_registered

    def snapshot(self, masked: bool) -> dict[str, Any]:
        return self.engine.snapshot(audience(masked))  # type: ignore[no-any-return]

    def snapshot_text(self, masked: bool) -> tuple[int, str]:
        seq, body = self.engine.snapshot_bytes(audience(masked))
        return seq, body.decode()

    async def ping(self) -> None:
        self.hub.ping(self.engine.heartbeat())


def afternoon_zone() -> str:
    """A time zone where it is mid-afternoon now: a simulated call center's day (its curve,
    its shifts) then has many intervals and live traffic whatever hour the suite runs (in
    Hanoi it may be just past midnight, with no calls yet)."""
    from datetime import UTC, datetime

    ahead = (15 - datetime.now(UTC).hour + 12) % 24 - 12  # -12 .. +11 hours from UTC
    return "Etc/GMT" + (f"-{ahead}" if ahead > 0 else f"+{-ahead}")  # POSIX: GMT-7 is UTC+7
