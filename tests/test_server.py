"""The server adapter: prepared frames byte for byte, the uvicorn config, the direct line on
the oldest uvicorn pyproject.toml admits, and stalled screens cut off on the plain ASGI path."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets
from packaging.requirements import Requirement
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.frames import Frame, Opcode

from tests.servers import ROOT, RawScreen, listener, port_of, serving, until
from wallboard.audience import Audience
from wallboard.bus import Published
from wallboard.hub import Hub, Screen
from wallboard.server import AsgiLine, DirectLine, RawSendMiddleware, config, text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 300_000])
def test_text_frame_matches_the_websockets_library(size: int) -> None:
    payload = ("é" * (size // 2) + "x" * (size % 2)).encode()
    assert text_frame(payload) == Frame(Opcode.TEXT, payload).serialize(mask=False)


def test_no_direct_line_without_a_known_server_send() -> None:
    async def some_send(message: object) -> None: ...

    assert DirectLine.find(some_send) is None


def test_the_config_names_its_protocols_and_believes_forwarded_headers_only_from_trusted_proxies() -> None:
    app = Starlette()
    plain = config(app, "127.0.0.1", 8000)
    assert (plain.ws, plain.http, plain.loop) == ("websockets-sansio", "h11", "uvloop")
    assert plain.proxy_headers is False
    proxied = config(app, "127.0.0.1", 8000, ["127.0.0.1", "10.0.0.2"])
    assert proxied.proxy_headers is True
    assert proxied.forwarded_allow_ips == "127.0.0.1,10.0.0.2"


# -- the oldest uvicorn we admit ----------------------------------------------------------

def uvicorn_floor() -> str:
    """The `>=` of pyproject.toml's uvicorn requirement: the test proves what the file admits."""
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (uvicorn,) = [r for r in map(Requirement, dependencies) if r.name == "uvicorn"]
    (floor,) = [s.version for s in uvicorn.specifier if s.operator == ">="]
    return floor


def installed_alone(version: str) -> Path:
    """uvicorn `version` alone (its dependencies are the venv's) in a directory that goes
    first on PYTHONPATH; kept beside the venv, so PyPI is asked once per version."""
    cache = Path(sys.prefix) / "uvicorn-floor"
    target = cache / version
    if not (target / "uvicorn").is_dir():
        cache.mkdir(exist_ok=True)
        fresh = Path(tempfile.mkdtemp(dir=cache))
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              "--no-deps", "--target", str(fresh), f"uvicorn=={version}"],
                             capture_output=True, text=True, timeout=300)
        assert pip.returncode == 0, f"pip could not fetch uvicorn=={version}:\n{pip.stderr[-2000:]}"
        with contextlib.suppress(OSError):  # another run put it there meanwhile
            fresh.rename(target)
    return target


@pytest.mark.parametrize("which", ["installed", "floor"])
def test_uvicorn_gives_screens_the_direct_line_and_the_shutdown_hook_runs(which: str) -> None:
    """tests/uvicorn_probe.py under the installed uvicorn and under the oldest one
    pyproject.toml admits: the direct line is found and written to, and a shutdown tells
    the screen 1001 before uvicorn's own 1012."""
    path = [str(ROOT)]
    if which == "floor":
        path.insert(0, str(installed_alone(uvicorn_floor())))
    started = time.monotonic()
    probe = subprocess.run([sys.executable, "-m", "tests.uvicorn_probe"], cwd=ROOT, capture_output=True,
                           text=True, timeout=60, env={**os.environ, "PYTHONPATH": os.pathsep.join(path)})
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(probe.stdout)
    print(f"\nuvicorn {found['uvicorn']}: {found['line']}, probe {time.monotonic() - started:.1f} s")
    if which == "floor":
        assert found["uvicorn"] == uvicorn_floor() and found["uvicorn_file"].startswith(path[0])
    assert found["ws_protocol"] == "WebSocketsSansIOProtocol"
    assert (found["line"], found["open"], found["received"]) == ("DirectLine", True, "direct")
    assert isinstance(found["unsent"], int) and isinstance(found["taken"], int)
    assert found["close_code"] == 1001


# -- the plain ASGI path ------------------------------------------------------------------

QUEUE = 16
SNAPSHOT_PAD = 200_000  # a board of a few thousand agents: more than the buffers hold


class Board:
    """A hub behind a bare Starlette app, fed by hand: what the hub does on a server that
    gives no direct line (uvicorn's wsproto protocol), apart from the engine."""

    def __init__(self) -> None:
        self.seq = 0
        self.hub = Hub(self.snapshot, queue_size=QUEUE)

    def snapshot(self, audience: Audience) -> tuple[int, bytes]:
        return self.seq, orjson.dumps({"type": "snapshot", "seq": self.seq, "state": {"pad": "x" * SNAPSHOT_PAD}})

    def publish(self) -> None:
        self.seq += 1
        payload = orjson.dumps({"type": "patch", "seq": self.seq, "ops": []})
        self.hub.publish(Published("e1", self.seq, {audience: payload for audience in Audience}))

    async def endpoint(self, ws: WebSocket) -> None:
        await ws.accept()
        async with self.hub.subscribe(ws, kind="viewer", audience=Audience.MASKED, session_id=None) as screen:
            await self.hub.serve(screen)

    def app(self) -> Starlette:
        return Starlette(routes=[WebSocketRoute("/ws", self.endpoint)], middleware=[Middleware(RawSendMiddleware)])


@contextlib.asynccontextmanager
async def swept(hub: Hub) -> AsyncIterator[None]:
    """The app's sweep, more often than its 0.5 s so the test waits less."""
    async def sweep() -> None:
        while True:
            hub.sweep()
            await asyncio.sleep(0.05)

    task = asyncio.create_task(sweep())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_stalled_screen_is_cut_off_on_the_asgi_path_while_a_normal_one_keeps_receiving() -> None:
    board = Board()
    sock = listener(sndbuf=16384)
    port = port_of(sock)
    async with serving(board.app(), sock, ws="wsproto", ws_ping_interval=None), swept(board.hub):
        stalled = await RawScreen.open(port, rcvbuf=4096)  # takes its snapshot's first bytes, then nothing
        await until(lambda: len(board.hub.screens) == 1, 5, "the stalled screen subscribed")
        (cut,) = board.hub.screens
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as normal:
            assert orjson.loads(await normal.recv())["type"] == "snapshot"
            (kept,) = board.hub.screens - {cut}
            assert isinstance(cut.line, AsgiLine) and isinstance(kept.line, AsgiLine)

            received: list[int] = []

            async def patches(upto: int) -> None:
                while not received or received[-1] < upto:
                    message = orjson.loads(await asyncio.wait_for(normal.recv(), 5))
                    received.append(message["seq"])

            board.publish()  # the stalled screen's send of it waits: the server is pushing back
            await until(lambda: cut.clogged, 5, "the stalled screen found")
            assert not kept.clogged and board.hub.clogs == 1
            sent_when_cut = cut.bytes_sent
            for _ in range(3 * QUEUE):
                board.publish()
                await patches(board.seq)
            assert received == list(range(1, board.seq + 1))  # every patch, in order
            assert cut.bytes_sent == sent_when_cut  # written nothing more
            assert cut.resync_pending and cut.queue.qsize() == 1  # one snapshot marker, no backlog
            assert not kept.clogged and board.hub.clogs == 1

            # It reads again: what it held, then one fresh snapshot, then patches as they come.
            seen: list[dict[str, Any]] = []
            while not (seen and seen[-1]["type"] == "snapshot" and seen[-1]["seq"] == board.seq):
                seen.append((await asyncio.wait_for(stalled.message(), 10))[0])
            assert [m["type"] for m in seen] == ["snapshot", "patch", "snapshot"]
            board.publish()
            assert (await asyncio.wait_for(stalled.message(), 5))[0]["seq"] == board.seq
            await until(lambda: not cut.clogged, 5, "the screen flowing again")
        stalled.close()


@pytest.mark.parametrize(("ws", "said"), [
    ("websockets-sansio", "screens: direct line active (uvicorn "),
    ("wsproto", "screens: direct line inactive, frames go through the ASGI send (server protocol WSProtocol)"),
])
async def test_the_first_screen_says_once_which_path_the_screens_are_on(
        ws: str, said: str, caplog: pytest.LogCaptureFixture) -> None:
    board = Board()
    caplog.set_level(logging.INFO, "wallboard.server")
    async with serving(board.app(), ws=ws, ws_ping_interval=None) as url:
        for _ in range(2):
            async with websockets.connect(url.replace("http", "ws") + "/ws", max_size=None) as screen:
                assert orjson.loads(await screen.recv())["type"] == "snapshot"
    told = [r.getMessage() for r in caplog.records if r.name == "wallboard.server"]
    assert len(told) == 1 and told[0].startswith(said), told


def test_a_screen_built_without_a_line_is_on_the_plain_path() -> None:
    screen = Screen(ws=None, kind="viewer", audience=Audience.MASKED, session_id=None,  # type: ignore[arg-type]
                    queue=asyncio.Queue(1))
    assert isinstance(screen.line, AsgiLine) and not screen.line.open() and screen.line.unsent() == 0
