"""The simulator over real HTTP: uvicorn on a free loopback port, webhooks to a real receiver."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.servers import serving, until
from wallboard.sim.app import SimOptions, create_sim_app


async def _token(http: httpx.AsyncClient, base: str) -> dict[str, str]:
    answer = await http.post(base + "/v1/auth/token", json={"api_key": "sim-api-key"})
    return {"Authorization": "Bearer " + answer.json()["data"]["token"]}


async def test_webhooks_reach_a_real_receiver_and_timeouts_hang() -> None:
    received: list[tuple[str, dict[str, Any]]] = []

    async def hook(request: Request) -> Response:
        received.append((request.headers.get("authorization", ""), await request.json()))
        return Response(status_code=200)

    receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    sim = create_sim_app(SimOptions(agents=4, rate=0, prefill=False, logged_in_ratio=1.0,
                                    speed=20.0))  # fmt: skip
    async with serving(receiver) as hook_base, serving(sim) as base, httpx.AsyncClient() as http:
        auth = await _token(http, base)
        for event in ("ringing", "answered", "hangup", "cdr"):
            body = {"callback_url": hook_base + "/hook", "callback_apikey": "s3", "event": event}
            assert (await http.post(base + "/v1/event", json=body, headers=auth)).status_code == 200
        flow = (await http.post(base + "/_sim/calls", json={
            "direction": "outbound", "exts": ["1002"], "number": "0899123456",
            "answer_by": "1002", "ring_seconds": 2, "talk_seconds": 4})).json()  # fmt: skip
        await until(lambda: len(received) == 4, 5, "four webhooks")
        assert [p["state"] for _, p in received] == ["ringing", "answered", "hangup", "cdr"]
        assert {p["call_id"] for _, p in received} == {flow["flow_id"]}
        assert {a for a, _ in received} == {"Bearer s3"}
        await http.post(base + "/_sim/faults", json={"timeout_rate": 1.0, "timeout_seconds": 1})
        with pytest.raises(httpx.ReadTimeout):
            await http.get(base + "/v1/call", headers=auth, timeout=0.3)
        await http.post(base + "/_sim/faults", json={"timeout_rate": 0.0})
        assert (await http.get(base + "/v1/call", headers=auth)).status_code == 200


async def test_monitor_agent_with_5000_agents_answers_every_logged_in_agent() -> None:
    # How fast it answers is measured by the benchmark (python -m bench.micro prints it), not here.
    sim = create_sim_app(SimOptions(agents=5000, seed=2, speed=1.0))
    async with serving(sim) as base, httpx.AsyncClient() as http:
        auth = await _token(http, base)
        for _ in range(3):
            sim.state.sim.world.version += 1  # a fresh encoding each time
            answer = await http.get(base + "/v1/monitor/agent", headers=auth)
            truth = (await http.get(base + "/_sim/truth")).json()
            logged_in = {a["ext"] for a in truth["agents"] if a["state"] != "offline"}
            body = answer.json()
            if {a["extension"] for a in body["data"]} == logged_in:
                break  # (a log-in or out between the two reads: read again)
        assert body["total"] == len(body["data"]) > 3500
        assert {a["extension"] for a in body["data"]} == logged_in
