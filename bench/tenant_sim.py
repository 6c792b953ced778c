"""The PBX of the tenants phase: `wallboard sim --tenants N --agents A --rate 0` (the same
app, the same server settings), with every agent logged in and one addition, a log of
when each /v1 request arrived, so the bench can see whether the polling of N tenants is
spread over each interval or comes as a herd (`GET /_bench/arrivals?since=T`: wall-clock
seconds, comparable to the bench's own clock on this machine).

Run: `python -m bench.tenant_sim --port P --tenants N --agents A`.
"""

from __future__ import annotations

import argparse
import bisect
import time
from array import array
from urllib.parse import parse_qs

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from wallboard.server import Server, config
from wallboard.sim.app import SimOptions, create_sim_app

MAX_ARRIVALS = 2_000_000  # 16 MB of doubles: an hour at 500 requests a second


class Arrivals:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.times = array("d")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith("/v1") and len(self.times) < MAX_ARRIVALS:
                self.times.append(time.time())
            elif path == "/_bench/arrivals":
                await self._answer(scope, send)
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send) -> None:
        query = parse_qs(scope.get("query_string", b"").decode())
        since = float((query.get("since") or ["0"])[0])
        body = orjson.dumps(self.times[bisect.bisect_left(self.times, since):].tolist())
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tenants", type=int, required=True)
    parser.add_argument("--agents", type=int, required=True)
    args = parser.parse_args()
    options = SimOptions(port=args.port, tenants=args.tenants, agents=args.agents, rate=0, profile="flat",
                         logged_in_ratio=1.0)
    Server(config(Arrivals(create_sim_app(options)), "127.0.0.1", args.port)).run()


if __name__ == "__main__":
    main()
