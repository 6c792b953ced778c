"""The synthetic PBX of the benchmark: the simulator (no traffic) with an overlay.

The bench rings agents itself with webhooks; so that the next poll agrees with
those webhooks instead of undoing them, the bench also tells this PBX about each
ring (`POST /_bench/ring`), and the overlay shows it in `/v1/monitor/agent` and
`/v1/call`, as a real PBX would. One ring per agent: a new ring replaces the old
call, which the next `/v1/call` poll then ends.

Run: `python -m bench.pbx --port P --agents M`.
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson
import uvicorn
from starlette.types import Message, Receive, Scope, Send

from wallboard.sim.app import SimOptions, create_sim_app


class RingOverlay:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.rings: dict[str, tuple[str, str]] = {}  # ext -> (call_id, caller)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path == "/_bench/ring":
            await self._ring(receive, send)
        elif scope["type"] == "http" and path in ("/v1/monitor/agent", "/v1/call"):
            await self._overlaid(scope, receive, send, path)
        else:
            await self.inner(scope, receive, send)

    async def _ring(self, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        for ring in orjson.loads(body):
            self.rings[ring["ext"]] = (ring["call_id"], ring["from"])
        await _reply(send, 200, b'{"ok":true}')

    async def _overlaid(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            else:
                chunks.append(message.get("body", b""))

        await self.inner(scope, receive, capture)
        body = b"".join(chunks)
        if start.get("status") == 200:
            data = orjson.loads(body)
            if isinstance(data, dict) and isinstance(data.get("data"), list):
                data["data"] = (self._agents(data["data"]) if path == "/v1/monitor/agent"
                                else data["data"] + self._calls())
                if "total" in data:
                    data["total"] = len(data["data"])
                body = orjson.dumps(data)
        await _reply(send, int(start.get("status", 500)), body)

    def _agents(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for row in rows:
            ring = self.rings.get(row.get("extension", ""))
            if ring:
                row.update(call_id=ring[0], call_state="RINGING", call_time="",
                           destination=ring[1], direction="inbound")
        return rows

    def _calls(self) -> list[dict[str, Any]]:
        return [{"call_id": call_id, "context": "", "created_time": "", "destination": ext,
                 "direction": "inbound", "ip": "", "source": caller, "state": "CS_ROUTING"}
                for ext, (call_id, caller) in self.rings.items()]


async def _reply(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--agents", type=int, required=True)
    args = parser.parse_args()
    options = SimOptions(port=args.port, agents=args.agents, rate=0, seed=7, logged_in_ratio=1.0,
                         prefill=False)
    app = RingOverlay(create_sim_app(options))
    uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=args.port, log_config=None,
                                  access_log=False, lifespan="on")).run()


if __name__ == "__main__":
    main()
