"""Prepared WebSocket frames: a patch is framed once and the same bytes are written
to every screen's socket (what gorilla/websocket calls a PreparedMessage).

Through Starlette and uvicorn each `send_text` re-encodes the text, builds a frame
object, serializes it and wakes a task per screen: ~25 us per screen per patch, most
of the CPU of a busy board. Server-to-client frames are unmasked and, with
per-message compression off, identical for every screen of an audience, so they can
be built once and handed straight to each connection's transport.

That needs the transport, which ASGI does not expose. `RawSendMiddleware` keeps the
server's own `send` in the scope; when it belongs to uvicorn's websockets-sansio
protocol, `DirectLine` writes through it. Anything else (another server, another
uvicorn protocol) gets no line and the hub uses the ordinary ASGI send, so this is
an optimisation only, never a requirement.
"""

from __future__ import annotations

import fcntl
import socket
import struct
import termios
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

SEND_KEY = "wallboard.server_send"
TCP_INFO = getattr(socket, "TCP_INFO", 11)
_BYTES_ACKED = 120  # offset of tcpi_bytes_acked in Linux's struct tcp_info (append-only ABI)


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


class RawSendMiddleware:
    """Outermost for websockets: remember the server's `send` before anything wraps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[SEND_KEY] = send
        await self.app(scope, receive, send)


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
    def find(cls, scope: Scope) -> DirectLine | None:
        proto = getattr(scope.get(SEND_KEY), "__self__", None)
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
        """Bytes written that the peer has not taken yet: the transport's buffer plus the
        kernel's send queue (SIOCOUTQ: not sent, or sent and not acknowledged)."""
        queued: int = self._transport.get_write_buffer_size()
        if self._fd < 0:
            return queued
        try:
            kernel: int = struct.unpack("i", fcntl.ioctl(self._fd, termios.TIOCOUTQ, b"\0\0\0\0"))[0]
        except OSError:
            return queued  # closed under us: the send loop finds out on its own
        return queued + kernel

    def taken(self) -> int | None:
        """Bytes the peer has acknowledged so far (Linux TCP_INFO tcpi_bytes_acked), or
        None where the kernel does not say."""
        try:
            info = self._sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 192)
        except (AttributeError, OSError):
            return None
        return struct.unpack_from("Q", info, _BYTES_ACKED)[0] if len(info) >= _BYTES_ACKED + 8 else None
