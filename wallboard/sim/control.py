"""The simulator's own control API under /_sim/ (never faulted): truth, faults, scripted calls."""

from __future__ import annotations

import contextlib
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wallboard.sim import draws, views
from wallboard.sim.cdrs import STATUSES
from wallboard.sim.runtime import Runtime
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


def build_routes(rt: Runtime) -> list[Route]:
    async def get_faults(request: Request) -> Response:
        return _json(rt.faults.to_json())

    async def set_faults(request: Request) -> Response:
        body = await _body(request)
        if body is None:
            return _error("body must be a JSON object")
        try:
            rt.faults.update(body)
        except ValueError as error:
            return _error(str(error))
        return _json(rt.faults.to_json())

    async def outage(request: Request) -> Response:
        body = await _body(request) or {}
        try:
            seconds = _seconds(body, "seconds")
        except ValueError as error:
            return _error(str(error))
        rt.faults.start_outage(seconds or 0.0)
        return _json(rt.faults.to_json())

    async def truth(request: Request) -> Response:
        rt.sync()
        return _json(views.truth(rt.world))

    async def stats(request: Request) -> Response:
        return _json(rt.stats.to_json())

    async def set_traffic(request: Request) -> Response:
        body = await _body(request) or {}
        rate = body.get("rate")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or rate < 0:
            return _error("rate must be a number of calls per minute >= 0")
        rt.sync()
        rt.traffic.set_rate(float(rate))
        rt.flush()
        return _json({"rate": rt.traffic.rate})

    async def script_call(request: Request) -> Response:
        body = await _body(request)
        if body is None:
            return _error("body must be a JSON object")
        try:
            return _start_scripted(rt, body)
        except ValueError as error:
            return _error(str(error))
        except ActionError as error:
            return _error(error.code, 409, message=error.message)

    async def move_call(request: Request) -> Response:
        rt.sync()
        call_id, move = request.path_params["call_id"], request.path_params["move"]
        if move not in ("answer", "hangup"):
            return _error("unknown move", 404)
        done = rt.world.answer(call_id) if move == "answer" else rt.world.hangup(call_id)
        rt.flush()
        if not done:
            return _error("CALL_NOT_FOUND", 404)
        return _json({"ok": True})

    async def agent_login(request: Request) -> Response:
        ext, move = request.path_params["ext"], request.path_params["move"]
        if ext not in rt.world.agents or move not in ("login", "logout"):
            return _error("no such agent or move", 404)
        rt.sync()
        if move == "login":
            rt.world.login(ext)
        else:
            rt.world.logout(ext)
        rt.flush()
        return _json({"ext": ext, "state": rt.world.agents[ext].state})

    async def expire_tokens(request: Request) -> Response:
        rt.tokens.expire_all()
        return _json({"expired": True})

    return [
        Route("/_sim/faults", get_faults, methods=["GET"]),
        Route("/_sim/faults", set_faults, methods=["POST"]),
        Route("/_sim/outage", outage, methods=["POST"]),
        Route("/_sim/truth", truth, methods=["GET"]),
        Route("/_sim/stats", stats, methods=["GET"]),
        Route("/_sim/traffic", set_traffic, methods=["POST"]),
        Route("/_sim/calls", script_call, methods=["POST"]),
        Route("/_sim/calls/{call_id}/{move}", move_call, methods=["POST"]),
        Route("/_sim/agents/{ext}/{move}", agent_login, methods=["POST"]),
        Route("/_sim/tokens/expire", expire_tokens, methods=["POST"]),
    ]


def _start_scripted(rt: Runtime, body: dict[str, Any]) -> Response:
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
    rt.sync()
    for ext in exts:
        rt.world.check_free(ext)
    if direction == "inbound":
        flow = rt.world.start_inbound(
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
        flow = rt.world.start_outbound(
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
    rt.flush()
    return _json({"flow_id": flow.flow_id, "legs": legs})
