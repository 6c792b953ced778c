"""Everything that knows uvicorn: its config, its server, and the line under each screen's socket.

Prepared frames: a patch is framed once and the same bytes are written to every screen
of an audience (what gorilla/websocket calls a PreparedMessage). Through Starlette and
uvicorn each `send_text` re-encodes the text, builds a frame object, serializes it and
wakes a task per screen: ~25 us per screen per patch, most of the CPU of a busy board.
Server-to-client frames are unmasked and, with per-message compression off, identical for
every screen of an audience, so they can be built once and handed straight to each
connection's transport.

That needs the transport, which ASGI does not expose. `RawSendMiddleware` sees the
server's own `send` before anything wraps it; when that belongs to uvicorn's
websockets-sansio protocol, the screen gets a `DirectLine` that writes through it. Any
other server or protocol gets an `AsgiLine`: its messages go through the ordinary ASGI
send, and the line counts what that send took, so the hub's sweep finds a screen that
stopped reading on either path.
"""

from __future__ import annotations

import fcntl
import logging
import socket
import struct
import termios
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("wallboard.server")

# Chosen by name, never by what happens to be installed: the direct line knows this
# websocket protocol only, h11 is the HTTP parser whose advisories the floor in
# pyproject.toml tracks, and uvloop is what the benchmarks measure.
WS_PROTOCOL = "websockets-sansio"
HTTP_PROTOCOL = "h11"
EVENT_LOOP = "uvloop"

LINE_KEY = "wallboard.line"
TCP_INFO = getattr(socket, "TCP_INFO", 11)
_BYTES_ACKED = 120  # offset of tcpi_bytes_acked in Linux's struct tcp_info (append-only ABI)
# A send waits only while the server's transport is paused, and an asyncio transport (uvloop's
# too) resumes once its buffer drops below the low-water mark (64 KiB high / 4): so while a
# send waits, the server holds more than this that the peer has not taken.
PAUSED_HOLDS = 16 * 1024


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame (RFC 6455 section 5.2) carrying `payload` (UTF-8)."""
    size = len(payload)
    if size < 126:
        head = bytes((0x81, size))
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 127, size)
    return head + payload


class Line(Protocol):
    """What the hub knows of the connection under one screen."""

    def open(self) -> bool:
        """True when a prepared frame may be written now (`write`)."""
        ...

    def write(self, frame: bytes) -> None: ...

    def unsent(self) -> int:
        """Bytes handed over that the peer has not taken yet."""
        ...

    def taken(self) -> int | None:
        """A count that moves whenever the peer takes bytes, or None where nothing says."""
        ...


class DirectLine:
    """The transport under one screen's socket, written to only while the connection
    is open and not pushing back (the protocol's own flow control: `writable`)."""

    __slots__ = ("_fd", "_proto", "_sock", "_transport")

    def __init__(self, proto: Any) -> None:
        self._proto = proto
        self._transport = proto.transport
        self._sock = self._transport.get_extra_info("socket")
        self._fd: int = self._sock.fileno() if self._sock is not None else -1

    @classmethod
    def find(cls, send: Send) -> DirectLine | None:
        """The line under the server's own `send`, when it is uvicorn's websockets-sansio
        protocol as we know it (uvicorn >= 0.52.1: flow control and `disconnected`)."""
        proto = getattr(send, "__self__", None)
        if type(proto).__name__ != "WebSocketsSansIOProtocol":
            return None
        if not all(hasattr(proto, name) for name in ("transport", "writable", "close_sent", "disconnected")):
            return None  # a uvicorn whose protocol we do not know: stay on the ASGI path
        return cls(proto)

    def open(self) -> bool:
        proto = self._proto
        return (proto.writable.is_set() and not proto.close_sent and not proto.disconnected
                and not self._transport.is_closing())

    def write(self, frame: bytes) -> None:
        self._transport.write(frame)

    def unsent(self) -> int:
        """The transport's buffer plus the kernel's send queue (SIOCOUTQ: not sent, or
        sent and not acknowledged)."""
        queued: int = self._transport.get_write_buffer_size()
        if self._fd < 0:
            return queued
        try:
            kernel: int = struct.unpack("i", fcntl.ioctl(self._fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0]
        except OSError:
            return queued  # closed under us: the send loop finds out on its own
        return queued + kernel

    def taken(self) -> int | None:
        """Bytes the peer has acknowledged so far (Linux TCP_INFO tcpi_bytes_acked)."""
        try:
            info = self._sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 192)
        except (AttributeError, OSError):
            return None
        return struct.unpack_from("Q", info, _BYTES_ACKED)[0] if len(info) >= _BYTES_ACKED + 8 else None


class AsgiLine:
    """The plain path: no prepared frames, every message goes through the ASGI send, and
    the line counts the bytes handed to that send against those it has taken. A send that
    has not returned is the server pushing back; one that waits from one sweep to the next
    is a screen that stopped reading.

    Blind where the direct line is not: until the server pushes back, its kernel takes what
    it is given, so a stalled screen is found only once its buffers are full."""

    __slots__ = ("_done", "_handed")

    def __init__(self) -> None:
        self._handed = 0
        self._done = 0

    def metered(self, send: Send) -> Send:
        """`send`, counting the bytes of each websocket message it is handed and takes."""
        async def metered_send(message: Message) -> None:
            if message["type"] != "websocket.send":
                await send(message)
                return
            size = len(message.get("bytes") or message.get("text") or b"")
            self._handed += size
            try:
                await send(message)
            finally:
                self._done += size

        return metered_send

    def open(self) -> bool:
        return False  # ASGI sends messages, not frames

    def write(self, frame: bytes) -> None:
        raise RuntimeError("the ASGI path takes messages, not frames")

    def unsent(self) -> int:
        waiting = self._handed - self._done
        return waiting + PAUSED_HOLDS if waiting else 0

    def taken(self) -> int:
        return self._done


class RawSendMiddleware:
    """Outermost: give each websocket its line, from the server's own `send` before
    anything wraps it. Says once, at the first screen, which path the screens are on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._told = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            server_send = send
            line: Line | None = DirectLine.find(server_send)
            if line is None:
                line = AsgiLine()
                send = line.metered(server_send)
            scope[LINE_KEY] = line
            if not self._told:
                self._told = True
                self._tell(line, server_send)
        await self.app(scope, receive, send)

    @staticmethod
    def _tell(line: Line, server_send: Send) -> None:
        if isinstance(line, DirectLine):
            log.info("screens: direct line active (uvicorn %s, %s)", uvicorn.__version__, WS_PROTOCOL)
        else:
            log.info("screens: direct line inactive, frames go through the ASGI send (server protocol %s)",
                     type(getattr(server_send, "__self__", None)).__name__)


def line_of(scope: Scope) -> Line:
    line = scope.get(LINE_KEY)
    if not isinstance(line, DirectLine | AsgiLine):
        raise RuntimeError("RawSendMiddleware is not installed")
    return line


def config(app: ASGIApp, host: str, port: int, trusted_proxies: list[str] | None = None) -> uvicorn.Config:
    # ws pings find dead sockets; the graceful timeout lets webhooks in flight finish.
    # X-Forwarded-For is believed only from `server.trusted_proxies` (none: from
    # nobody, so the audit log's client address cannot be forged by a header).
    trusted = ",".join(trusted_proxies or [])
    return uvicorn.Config(app, host=host, port=port, ws=WS_PROTOCOL, http=HTTP_PROTOCOL, loop=EVENT_LOOP,
                          log_config=None, access_log=False,
                          ws_ping_interval=20.0, ws_ping_timeout=20.0, ws_per_message_deflate=False,
                          ws_max_size=4 * 1024,  # a screen sends {"type": "resync"}; hub.py holds the same limit
                          timeout_graceful_shutdown=5, lifespan="on",
                          proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None)


class Server(uvicorn.Server):
    """uvicorn drops open websockets with 1012 before the app's shutdown runs; on SIGTERM
    `before_shutdown` runs first, with the listening sockets closed (no new screens while
    the old ones are told to go), so the wallboard can tell its screens 1001 "going away"
    and they reconnect (with jitter) to whatever takes this process's place."""

    def __init__(self, config: uvicorn.Config, *,
                 before_shutdown: Callable[[], Awaitable[None]] | None = None) -> None:
        super().__init__(config)
        self._before_shutdown = before_shutdown

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._before_shutdown is not None:
            for server in self.servers:
                server.close()
            await self._before_shutdown()
        await super().shutdown(sockets)
