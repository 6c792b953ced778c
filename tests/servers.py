"""Real servers on loopback ports for end-to-end tests and benchmarks: the
simulator and the wallboard as separate processes, started with the same
`wallboard` command a user runs, or an app behind uvicorn in the test's own loop.

Ports: the kernel hands a just-released port straight out again, so a port picked
by binding to 0 and closing can be taken by someone else before the server binds
it. In-process servers therefore get an already bound socket (`listener`); child
processes are started again on a fresh port when theirs was taken meanwhile."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn

from wallboard.server import HTTP_PROTOCOL, WS_PROTOCOL

ROOT = Path(__file__).resolve().parent.parent
_handed_out: set[int] = set()


def unread_by_server(port: int) -> list[int]:
    """For each open connection to the server on `port`, the bytes the kernel holds that
    the server has not read yet (/proc/net/tcp, rx_queue); 0: it read all it was sent."""
    unread = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state, queues = fields[1], fields[3], fields[4]
                if int(local.rsplit(":", 1)[1], 16) == port and state == "01":  # ESTABLISHED
                    unread.append(int(queues.split(":")[1], 16))
    return unread


def free_port() -> int:
    """A loopback port nobody listens on now, never the same one twice in this process."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def listener(port: int = 0, *, sndbuf: int | None = None) -> socket.socket:
    """A socket bound to loopback `port` (0: a free one), for `serving`; read the port with `port_of`.

    `sndbuf` caps each accepted socket's kernel send buffer (Linux passes it on from
    the listening socket), as a slow network would; loopback otherwise buffers megabytes.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sndbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.bind(("127.0.0.1", port))
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


@asynccontextmanager
async def serving(app: Any, sock: socket.socket | None = None, **config: Any) -> AsyncIterator[str]:
    """`app` behind a real uvicorn in this event loop, lifespan included, on `sock`
    (a fresh `listener()` if not given), with the protocols `wallboard serve` names (or
    those `config` overrides); yields its base URL."""
    sock = sock or listener()
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, ws_per_message_deflate=False,
                                           lifespan="on", **{"timeout_graceful_shutdown": 3, "ws": WS_PROTOCOL,
                                                             "http": HTTP_PROTOCOL, **config}))
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve([sock]))
    try:
        await until(lambda: server.started or task.done(), 10, "uvicorn start")
        if task.done():
            task.result()
        yield f"http://127.0.0.1:{port_of(sock)}"
    finally:
        server.should_exit = True
        try:
            await task
        finally:
            sock.close()


class RawScreen:
    """A WebSocket client on a bare socket, so a test decides when (if ever) it reads."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, *, rcvbuf: int | None = None) -> RawScreen:
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=8192)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.split(b"\r\n")[0].split()[1] == b"101", head
        return cls(reader, writer)

    async def frame(self) -> tuple[int, bytes]:
        b0, b1 = await self.reader.readexactly(2)
        size = b1 & 0x7F
        if size == 126:
            size = int.from_bytes(await self.reader.readexactly(2), "big")
        elif size == 127:
            size = int.from_bytes(await self.reader.readexactly(8), "big")
        return b0 & 0x0F, await self.reader.readexactly(size)

    async def message(self) -> tuple[dict[str, Any], int]:
        """The next text message and its size on the wire; answers pings on the way."""
        while True:
            opcode, payload = await self.frame()
            if opcode == 0x1:
                return orjson.loads(payload), len(payload)
            if opcode == 0x9:
                self.send(0xA, payload)
            elif opcode == 0x8:
                raise ConnectionError("closed by the server")

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked)

    def close(self) -> None:
        self.writer.close()


async def until(check: Callable[[], Any], within: float, what: str, interval: float = 0.02) -> Any:
    """The async `wait_until`: poll `check` without blocking the loop the servers run in."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {within} s waiting for {what}")


def wait_until(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05,
               what: str = "condition") -> Any:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as e:  # not up yet
            last_error = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}"
                         + (f" (last error: {last_error!r})" if last_error else ""))


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def _spawn(args: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "wallboard.cli", *args], cwd=ROOT,
                                env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)


def _wait_up(server: Server, path: str, timeout: float) -> None:
    def up() -> bool:
        if server.proc.poll() is not None:
            raise AssertionError(f"server exited with {server.proc.returncode}:\n{server.log()[-3000:]}")
        return httpx.get(server.url + path, timeout=1.0).status_code < 500

    try:
        wait_until(up, timeout, what=f"{server.url}{path}")
    except AssertionError:
        server.stop()
        raise


def _start(make: Callable[[int], Server], path: str, port: int | None) -> Server:
    """Start the server `make(port)` builds and wait until `path` answers; on a port
    picked here that someone took meanwhile, start it again on another."""
    for _ in range(3):
        server = make(port or free_port())
        try:
            _wait_up(server, path, 20)
            return server
        except AssertionError:
            if port or "address already in use" not in server.log():
                raise
    raise AssertionError("no free port after 3 tries")


@contextmanager
def sim_server(tmp: Path, *flags: str, port: int | None = None) -> Iterator[Server]:
    def make(port: int) -> Server:
        log_path = tmp / f"sim-{port}.log"
        return Server(_spawn(["sim", "--port", str(port), *flags], {}, log_path), f"http://127.0.0.1:{port}",
                      log_path)

    server = _start(make, "/_sim/truth", port)
    try:
        yield server
    finally:
        server.stop()


def wallboard_env(tmp: Path, sim_url: str, port: int, **overrides: str) -> dict[str, str]:
    env = {
        "WALLBOARD_CONFIG": str(ROOT / "config.toml"),
        "WALLBOARD_SERVER_PORT": str(port),
        "WALLBOARD_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "WALLBOARD_PBX_BASE_URL": sim_url,
        "WALLBOARD_PBX_API_KEY": "sim-api-key",
        "WALLBOARD_STORAGE_PATH": str(tmp / "var" / "wallboard.db"),
        "WALLBOARD_POLL_AGENTS_INTERVAL": "1.0",
        "WALLBOARD_POLL_CALLS_INTERVAL": "1.0",
        "WALLBOARD_POLL_STATUS_INTERVAL": "2.0",
        "WALLBOARD_POLL_CDR_INTERVAL": "3.0",
        "WALLBOARD_SERVER_ALLOW_MISSING_ORIGIN": "true",  # the tests' own screens are not browsers
    }
    env.update({f"WALLBOARD_{k.upper()}": v for k, v in overrides.items()})
    return env


@contextmanager
def wallboard_server(tmp: Path, sim_url: str, port: int | None = None, **overrides: str) -> Iterator[Server]:
    """`overrides` are config keys as SECTION_KEY=value, e.g. auth_mode="none"."""
    def make(port: int) -> Server:
        log_path = tmp / f"wallboard-{port}.log"
        return Server(_spawn(["serve"], wallboard_env(tmp, sim_url, port, **overrides), log_path),
                      f"http://127.0.0.1:{port}", log_path)

    server = _start(make, "/healthz", port)
    try:
        yield server
    finally:
        server.stop()
