"""Faults on demand for the vendor routes: latency, 500s, timeouts, garbage, outages.

The webhook faults live here too (as settings) but hooks.py applies them. /_sim/ routes are
never faulted, so tests can always steer the simulator.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wallboard.sim.stats import RequestStats

_GARBAGE = (
    b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    b'{"data": [{"agent_name": "Nguy',  # half-written JSON
    b'["unexpected", "shape"]',
    b'{"data": "temporarily unavailable", "total": "n/a"}',
    b"",
)


@dataclass
class Faults:
    latency_ms: float = 0.0  # added to every /v1 answer
    error_rate: float = 0.0  # share of /v1 requests answered 500
    timeout_rate: float = 0.0  # share that hang for timeout_seconds before answering
    timeout_seconds: float = 30.0
    garbage_rate: float = 0.0  # share answered 200 with a body that is not the expected JSON
    hook_duplicate: float = 0.0  # share of webhooks sent twice
    hook_drop: float = 0.0  # share never sent
    hook_delay: float = 0.0  # share sent hook_delay_seconds late
    hook_delay_seconds: float = 2.0
    hook_reorder: float = 0.0  # share held back and sent after the next one
    token_lifetime: float = 3600.0  # seconds, for tokens issued from now on
    outage_until: float = dataclasses.field(default=0.0, repr=False)  # time.monotonic()

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a partial update; ValueError names the first bad key."""
        known = {f.name for f in dataclasses.fields(self)} - {"outage_until"}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}")
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"fault {key!r} must be a number >= 0")
            if key.endswith(("_rate", "duplicate", "drop", "delay", "reorder")) and value > 1:
                raise ValueError(f"fault {key!r} is a probability between 0 and 1")
        for key, value in changes.items():
            setattr(self, key, float(value))

    def start_outage(self, seconds: float) -> None:
        self.outage_until = time.monotonic() + seconds

    def outage_left(self) -> float:
        return max(0.0, self.outage_until - time.monotonic())

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        del data["outage_until"]
        data["outage_seconds_left"] = round(self.outage_left(), 3)
        return data


class Target(Protocol):
    """Whose faults apply to a request, and who counts it: its tenant."""

    faults: Faults
    stats: RequestStats
    fault_rng: random.Random


# The login routes name their tenant in the body (api_key, username), not in a bearer.
BODY_ROUTES = ("/v1/auth", "/v1/auth/token")
Pick = Callable[[Scope, bytes], Target]


class FaultMiddleware:
    """Counts every request, then spoils /v1 answers as the faults of its tenant say."""

    def __init__(self, app: ASGIApp, *, pick: Pick) -> None:
        self.app = app
        self.pick = pick

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        body = b""
        if scope["method"] == "POST" and path in BODY_ROUTES:
            body, receive = await _read_body(receive)
        target = self.pick(scope, body)
        target.stats.count(scope["method"], path)
        if not path.startswith("/v1"):
            await self.app(scope, receive, send)
            return
        faults = target.faults
        if faults.outage_left() > 0:
            outage = {"status": "fail", "error": "SERVICE_UNAVAILABLE", "message": "outage"}
            await _answer(send, 503, orjson.dumps(outage))
            return
        if faults.latency_ms > 0:
            await asyncio.sleep(faults.latency_ms / 1000)
        roll = target.fault_rng.random()
        if roll < faults.timeout_rate:
            await asyncio.sleep(faults.timeout_seconds)
        elif roll < faults.timeout_rate + faults.error_rate:
            error = {"status": "fail", "error": "INTERNAL_SERVER_ERROR"}
            await _answer(send, 500, orjson.dumps(error))
            return
        elif roll < faults.timeout_rate + faults.error_rate + faults.garbage_rate:
            await _answer(send, 200, target.fault_rng.choice(_GARBAGE))
            return
        await self.app(scope, receive, send)


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a `receive` that hands it to the app again."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body, replayed = b"".join(chunks), False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def _answer(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
