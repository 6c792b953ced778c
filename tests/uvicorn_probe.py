"""Run by tests/test_server.py under a chosen uvicorn (the oldest pyproject.toml admits, or
the installed one), as `python -m tests.uvicorn_probe`: a real server built by
`wallboard.server` on uvloop, a websocket through it, a frame written on its direct line,
and a shutdown that tells the screen 1001 first. Prints what it found as one JSON line."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import uvicorn
import uvloop
import websockets
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from wallboard.server import DirectLine, RawSendMiddleware, Server, config, line_of, text_frame


async def probe() -> dict[str, Any]:
    found: dict[str, Any] = {"uvicorn": uvicorn.__version__, "uvicorn_file": uvicorn.__file__}
    screens: list[WebSocket] = []

    async def endpoint(ws: WebSocket) -> None:
        await ws.accept()
        line = line_of(ws.scope)
        found["line"] = type(line).__name__
        if isinstance(line, DirectLine):
            found["open"] = line.open()
            line.write(text_frame(b'"direct"'))
            found["unsent"], found["taken"] = line.unsent(), line.taken()
        else:
            await ws.send_text('"asgi"')
        screens.append(ws)
        try:
            await ws.receive_text()  # until the shutdown closes it
        except WebSocketDisconnect:
            pass

    async def close_screens() -> None:
        await asyncio.gather(*(ws.close(1001, "server restarting") for ws in screens))

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)], middleware=[Middleware(RawSendMiddleware)])
    server = Server(config(app, "127.0.0.1", port), before_shutdown=close_screens)
    serving = asyncio.create_task(server.serve([sock]))
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.01)
    found["ws_protocol"] = server.config.ws_protocol_class.__name__  # type: ignore[union-attr]
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as client:
        found["received"] = json.loads(await asyncio.wait_for(client.recv(), 5))
        server.should_exit = True
        await asyncio.wait_for(client.wait_closed(), 15)
        found["close_code"] = client.close_code
    await asyncio.wait_for(serving, 15)
    return found


if __name__ == "__main__":
    print(json.dumps(uvloop.run(probe())))
