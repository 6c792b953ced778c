"""The simulator's own control API under /_sim/ (never faulted): truth, faults, scripted calls.

Each route acts on one tenant: `?tenant=ID`, or the default (first or only) one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wallboard.sim import draws, views
from wallboard.sim.cdrs import STATUSES
from wallboard.sim.center import Center
from wallboard.sim.day import PROFILES
from wallboard.sim.runtime import Runtime
from wallboard.sim.stats import RequestStats
from wallboard.sim.world import ActionError


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _error(text: str, status: int = 400, **extra: Any) -> Response:
    return _json({"error": text, **extra}, status)


async def _body(request: Request) -> dict[str, Any] | None:
    with contextlib.suppress(orjson.JSONDecodeError):
        data = orjson.loads(await request.body() or b"{}")
        if isinstance(data, dict):
            return data
    return None


def _seconds(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{key} must be a number of seconds >= 0 or null")
    return float(value)


TenantHandler = Callable[[Request, Center], Awaitable[Response]]


def build_routes(rt: Runtime) -> list[Route]:
    def tenant(handler: TenantHandler) -> Callable[[Request], Awaitable[Response]]:
        """?tenant=ID picks the tenant; without it, the default (first or only) one."""

        async def endpoint(request: Request) -> Response:
            center = rt.center(request.query_params.get("tenant"))
            if center is None:
                return _error("no such tenant", 404)
            return await handler(request, center)

        return endpoint

    async def get_faults(request: Request, center: Center) -> Response:
        return _json(center.faults.to_json())

    async def set_faults(request: Request, center: Center) -> Response:
        body = await _body(request)
        if body is None:
            return _error("body must be a JSON object")
        try:
            center.faults.update(body)
        except ValueError as error:
            return _error(str(error))
        return _json(center.faults.to_json())

    async def outage(request: Request, center: Center) -> Response:
        body = await _body(request) or {}
        try:
            seconds = _seconds(body, "seconds")
        except ValueError as error:
            return _error(str(error))
        center.faults.start_outage(seconds or 0.0)
        return _json(center.faults.to_json())

    async def truth(request: Request, center: Center) -> Response:
        center.sync()
        return _json(views.truth(center.world))

    async def stats(request: Request) -> Response:
        if request.query_params.get("tenant") == "all":
            return _json(RequestStats.combined({c.id: c.stats for c in rt.centers.values()}))
        center = rt.center(request.query_params.get("tenant"))
        if center is None:
            return _error("no such tenant", 404)
        return _json(center.stats.to_json())

    async def tenants(request: Request) -> Response:
        return _json({"data": [{"id": c.id, "domain": c.world.domain, "api_key": c.api_key,
                                "enabled": c.enabled, "agents": len(c.world.agents)}
                               for c in rt.centers.values()]})  # fmt: skip

    async def get_traffic(request: Request, center: Center) -> Response:
        center.sync()
        return _json(center.traffic.describe())

    async def set_traffic(request: Request, center: Center) -> Response:
        """{"rate": calls per minute (flat) or at the peak (day), "profile"?: "flat" | "day"}"""
        body = await _body(request) or {}
        rate, profile = body.get("rate"), body.get("profile")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or rate < 0:
            return _error("rate must be a number of calls per minute >= 0")
        if profile is not None and profile not in PROFILES:
            return _error(f"profile must be one of {', '.join(PROFILES)}")
        center.sync()
        center.traffic.set_rate(float(rate), profile)
        center.flush()
        answer: dict[str, Any] = {"rate": center.traffic.rate}
        if profile is not None:
            answer["profile"] = center.traffic.profile
        return _json(answer)

    async def script_call(request: Request, center: Center) -> Response:
        body = await _body(request)
        if body is None:
            return _error("body must be a JSON object")
        try:
            return _start_scripted(center, body)
        except ValueError as error:
            return _error(str(error))
        except ActionError as error:
            return _error(error.code, 409, message=error.message)

    async def move_call(request: Request, center: Center) -> Response:
        center.sync()
        call_id, move = request.path_params["call_id"], request.path_params["move"]
        if move not in ("answer", "hangup"):
            return _error("unknown move", 404)
        done = center.world.answer(call_id) if move == "answer" else center.world.hangup(call_id)
        center.flush()
        if not done:
            return _error("CALL_NOT_FOUND", 404)
        return _json({"ok": True})

    async def agent_login(request: Request, center: Center) -> Response:
        ext, move = request.path_params["ext"], request.path_params["move"]
        world = center.world
        if ext not in world.agents or move not in ("login", "logout"):
            return _error("no such agent or move", 404)
        center.sync()
        if move == "login":
            world.login(ext)
        else:
            world.logout(ext)
        center.flush()
        return _json({"ext": ext, "state": world.agents[ext].state})

    async def expire_tokens(request: Request, center: Center) -> Response:
        rt.tokens.expire(center.id)
        return _json({"expired": True})

    return [
        Route("/_sim/faults", tenant(get_faults), methods=["GET"]),
        Route("/_sim/faults", tenant(set_faults), methods=["POST"]),
        Route("/_sim/outage", tenant(outage), methods=["POST"]),
        Route("/_sim/truth", tenant(truth), methods=["GET"]),
        Route("/_sim/stats", stats, methods=["GET"]),
        Route("/_sim/tenants", tenants, methods=["GET"]),
        Route("/_sim/traffic", tenant(get_traffic), methods=["GET"]),
        Route("/_sim/traffic", tenant(set_traffic), methods=["POST"]),
        Route("/_sim/calls", tenant(script_call), methods=["POST"]),
        Route("/_sim/calls/{call_id}/{move}", tenant(move_call), methods=["POST"]),
        Route("/_sim/agents/{ext}/{move}", tenant(agent_login), methods=["POST"]),
        Route("/_sim/tokens/expire", tenant(expire_tokens), methods=["POST"]),
    ]


def _start_scripted(center: Center, body: dict[str, Any]) -> Response:
    direction = body.get("direction", "inbound")
    exts = body.get("exts")
    if direction not in ("inbound", "outbound"):
        raise ValueError("direction must be inbound or outbound")
    if not isinstance(exts, list) or not exts or not all(isinstance(e, str) for e in exts):
        raise ValueError("exts must be a non-empty list of extensions")
    if direction == "outbound" and len(exts) != 1:
        raise ValueError("an outbound call has exactly one ext")
    if len(set(exts)) != len(exts):
        raise ValueError("exts must not repeat")
    number = str(body.get("number") or "0899123456")
    hotline = str(body.get("hotline") or draws.HOTLINES[0])
    answer_by = body.get("answer_by")
    if answer_by is not None and answer_by not in exts:
        raise ValueError("answer_by must be one of exts, or null")
    outcome = body.get("outcome")
    if outcome is not None and outcome not in STATUSES:
        raise ValueError(f"outcome must be one of {', '.join(STATUSES)}")
    ring, talk = _seconds(body, "ring_seconds"), _seconds(body, "talk_seconds")
    center.sync()
    for ext in exts:
        center.world.check_free(ext)
    if direction == "inbound":
        flow = center.world.start_inbound(
            exts=exts,
            number=number,
            hotline=hotline,
            receive_dest=str(body.get("receive_dest") or "ringgroup-6000"),
            ring_seconds=ring,
            talk_seconds=talk,
            answer_by=answer_by,
            outcome=outcome,
            manual=talk is None,
        )
    else:
        flow = center.world.start_outbound(
            ext=exts[0],
            number=number,
            hotline=hotline,
            ring_seconds=ring,
            talk_seconds=talk,
            answered=answer_by is not None,
            outcome=outcome,
            manual=talk is None,
        )
    legs = [{"ext": leg.ext, "call_id": leg.call_id} for leg in flow.legs]
    center.flush()
    return _json({"flow_id": flow.flow_id, "legs": legs})
