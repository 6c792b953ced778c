"""Shared set-up for the simulator's tests: an app behind ASGITransport, webhooks captured."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from wallboard.sim.app import SimOptions, create_sim_app
from wallboard.sim.runtime import Runtime

QUIET = {"agents": 6, "seed": 5, "rate": 0, "prefill": False, "logged_in_ratio": 1.0}
HOOK_URL = "http://receiver.test/hook"


@dataclass
class Sim:
    client: httpx.AsyncClient
    runtime: Runtime
    hooks: list[dict[str, Any]] = field(default_factory=list)
    hook_headers: list[httpx.Headers] = field(default_factory=list)

    async def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = await self.client.post(f"/_sim/{path}", json=body or {})
        assert response.status_code == 200, response.text
        return response.json()

    async def truth(self) -> dict[str, Any]:
        return dict((await self.client.get("/_sim/truth")).json())

    async def register(self, *events: str) -> None:
        for event in events:
            body = {"callback_url": HOOK_URL, "callback_apikey": "k3y", "event": event}
            assert (await self.client.post("/v1/event", json=body)).json() == {"created": True}


@asynccontextmanager
async def running_sim(**overrides: Any) -> AsyncIterator[Sim]:
    """A quiet simulator (no traffic, every agent logged in) unless overridden."""
    captured: list[dict[str, Any]] = []
    headers: list[httpx.Headers] = []

    def receive(request: httpx.Request) -> httpx.Response:
        captured.append(orjson.loads(request.content))
        headers.append(request.headers)
        return httpx.Response(200)

    hook_client = httpx.AsyncClient(transport=httpx.MockTransport(receive))
    app = create_sim_app(SimOptions(**{**QUIET, **overrides}), http_client=hook_client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sim") as client:
            answer = await client.post("/v1/auth/token", json={"api_key": "sim-api-key"})
            client.headers["Authorization"] = "Bearer " + answer.json()["data"]["token"]
            yield Sim(client, app.state.sim, captured, headers)
    await hook_client.aclose()


async def wait_until(predicate: Callable[[], Any], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
