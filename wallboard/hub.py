"""Screens, their queues, snapshots and resync.

Each screen gets its own bounded queue (the broadcaster shape: subscribe() hands
it out and cleans up in `finally`). `publish` never waits: a screen whose queue
is full loses its backlog and is sent one fresh snapshot instead, so a slow or
stalled screen costs the others nothing and its memory stays bounded.

The fast path: a screen that is caught up (nothing queued, nothing being sent) and
whose connection takes bytes gets the patch's prepared frame written straight to its
socket (server.py), without a task switch. Anything else (a screen behind, pushing
back, or on a server without a direct line) goes through its queue, in order.

A screen that stops reading (a TV whose browser hung, a phone in a tunnel) is found by
`sweep`: the kernel would otherwise take megabytes into the socket's buffers before
pushing back, and every patch would still be written to it meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from wallboard.audience import Audience
from wallboard.bus import LocalBus, PatchBus, Published
from wallboard.ratelimit import TokenBucket
from wallboard.server import AsgiLine, Line, line_of, text_frame
from wallboard.views import View

log = logging.getLogger("wallboard.hub")
T = TypeVar("T")

RESYNC = object()  # queue marker: send a fresh snapshot
RESYNC_BYTES = b"resync"  # a view's patch that its screens cannot take: a snapshot instead
UNNARROWED = b"unnarrowed"  # a patch with no narrowing (from another process): a snapshot, throttled
VIEW_RESYNC_EVERY_S = 1.0  # at most this often per screen of a view for such patches
STALL_BYTES = 16 * 1024  # unread bytes a screen may hold without taking any for a sweep
# Heartbeat period. Pings also carry each source's last success: polls that change
# nothing send no patch, so this is how a screen learns the board is still current.
PING_EVERY_S = 5.0
CLOSE_LOGGED_OUT = 4000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
# What a screen may send: {"type": "resync"} now and then (server.py tells uvicorn the same size).
MAX_CLIENT_MESSAGE = 4 * 1024
CLIENT_MESSAGES_PER_S = 2.0
CLIENT_BURST = 20


@dataclass(frozen=True, slots=True)
class Resume:
    """A screen coming back at `seq`: the patches after it (all of them), then a heartbeat
    that tells it it is current."""

    seq: int
    patches: list[Published]
    heartbeat: str


@dataclass(eq=False)
class Screen:
    ws: WebSocket
    kind: str  # "supervisor", "viewer" or "kiosk"
    audience: Audience
    session_id: str | None
    queue: asyncio.Queue[Any]
    line: Line = field(default_factory=AsgiLine)  # a plain-path line, where none is given
    sent_seq: int = -1
    bytes_sent: int = 0
    busy: bool = False  # the send loop holds an item it has not finished writing
    resync_pending: bool = False  # a snapshot marker is queued (and nothing after it)
    clogged: bool = False  # holds unread bytes and took none since the last sweep
    taken: int | None = None  # bytes it had acknowledged at the last sweep
    unsent: int = 0  # bytes it had not taken at the last sweep
    flowing: asyncio.Event = field(default_factory=asyncio.Event)  # set while not clogged
    closing: int | None = field(default=None)
    view: View | None = None  # narrowed to a team or a hotline (views.py)
    view_due: float | None = None  # an unnarrowed patch came: a snapshot is due at this time (monotonic)


class Hub:
    def __init__(self, snapshot: Callable[..., tuple[int, bytes]], *, queue_size: int = 64,
                 on_drop: Callable[[], None] | None = None) -> None:
        """`snapshot(audience)` (and `snapshot(audience, view)` for a narrowed screen) returns
        (seq, encoded snapshot message)."""
        self._snapshot = snapshot
        self._queue_size = queue_size
        self._on_drop = on_drop or (lambda: None)
        self.screens: set[Screen] = set()
        self.patches_sent = 0
        self.bytes_sent = 0
        self.resyncs = 0
        self.drops = 0
        self.direct = 0  # patches written straight to a socket (server.py)
        self.clogs = 0  # times a screen was found not reading
        self.resumes = 0  # screens that came back and were sent only what they missed
        # Set while snapshots can be taken: a cluster node clears it until its copy of the
        # published line is loaded, so a screen's first frame is never an empty board.
        self.ready = asyncio.Event()
        self.ready.set()
        # The last snapshots' frames and texts, shared by every screen that gets one.
        self._framed = _PerBody(text_frame)
        self._decoded = _PerBody(bytes.decode)
        self._closing: set[asyncio.Future[None]] = set()
        # (audience, view) -> the seq of the last patch its screens were sent (views.py `after`)
        self._after: dict[tuple[Audience, View], int] = {}

    async def run(self, bus: PatchBus) -> None:
        """Deliver the bus's patches to the screens until cancelled: in the publishing turn
        from an in-process bus, as they arrive from any other."""
        if isinstance(bus, LocalBus):
            with bus.attach(self.publish):
                await asyncio.Event().wait()
        async with bus.subscribe() as patches:
            async for patch in patches:
                self.publish(patch)

    def publish(self, patch: Published) -> None:
        frames: dict[Audience, bytes] = {}  # framed once per audience, on first use
        narrowed: dict[tuple[Audience, View], bytes | None] = {}  # once per audience and view with screens
        for screen in self.screens:
            if screen.view is not None:
                self._publish_narrowed(screen, screen.view, patch, narrowed)
                continue
            line = screen.line
            if (line is not None and not screen.busy and not screen.clogged and not screen.queue.qsize()
                    and line.open()):
                if patch.seq > screen.sent_seq:
                    frame = frames.get(screen.audience)
                    if frame is None:
                        frame = frames[screen.audience] = text_frame(patch.payloads[screen.audience])
                    line.write(frame)
                    screen.sent_seq = patch.seq
                    screen.bytes_sent += len(frame)
                    self.bytes_sent += len(frame)
                    self.patches_sent += 1
                    self.direct += 1
            else:
                self._offer(screen, patch)

    def _narrowed(self, key: tuple[Audience, View], patch: Published) -> bytes | None:
        """A view's patch message: None when it holds nothing for the view, RESYNC_BYTES when
        its screens must be sent a snapshot."""
        if patch.narrow is None:
            return UNNARROWED
        ops = patch.narrow(*key)
        if ops is not None and not ops:
            return None
        after = self._after.get(key, 0)
        self._after[key] = patch.seq
        if ops is None:
            return RESYNC_BYTES
        return orjson.dumps({"type": "patch", "seq": patch.seq, "after": after, "ops": ops})

    def _publish_narrowed(self, screen: Screen, view: View, patch: Published,
                          narrowed: dict[tuple[Audience, View], bytes | None]) -> None:
        key = (screen.audience, view)
        if key not in narrowed:
            narrowed[key] = self._narrowed(key, patch)
        body = narrowed[key]
        if body is None or patch.seq <= screen.sent_seq:
            return
        if body is RESYNC_BYTES:
            if not screen.resync_pending:
                self.resync(screen)
            return
        if body is UNNARROWED:
            # A cluster node that does not lead has the patch as published, not narrowed: its
            # screens of a view get a fresh snapshot at most once a second (`sweep` sends the last).
            if screen.view_due is None:
                screen.view_due = time.monotonic() + VIEW_RESYNC_EVERY_S
            return
        line = screen.line
        if line is not None and not screen.busy and not screen.clogged and not screen.queue.qsize() and line.open():
            frame = text_frame(body)
            line.write(frame)
            screen.sent_seq = patch.seq
            screen.bytes_sent += len(frame)
            self.bytes_sent += len(frame)
            self.patches_sent += 1
            self.direct += 1
        else:
            self._offer(screen, body.decode())

    def _offer(self, screen: Screen, item: Any) -> None:
        if screen.resync_pending:
            return  # the snapshot it is due shows this change too: a stalled screen costs nothing
        if screen.queue.full():
            self.resync(screen)
            self.drops += 1
            self._on_drop()
        else:
            screen.queue.put_nowait(item)

    def resync(self, screen: Screen) -> None:
        """Replace whatever the screen has queued with one fresh snapshot, taken when sent."""
        while not screen.queue.empty():
            screen.queue.get_nowait()
        screen.queue.put_nowait(RESYNC)
        screen.resync_pending = True

    def resync_all(self) -> None:
        """Every screen gets a fresh snapshot: the line it follows was replaced (cluster mode).
        A screen whose snapshot is already due (not taken yet) gets that one only."""
        due = [screen for screen in self.screens if not screen.resync_pending]
        for screen in due:
            self.resync(screen)
        self.resyncs += len(due)

    def sweep(self) -> None:
        """Send the snapshot due to a screen of a view (see UNNARROWED); then mark the screens
        that hold at least STALL_BYTES unread and took nothing since the last sweep: they are
        written nothing more (their queue overflows into one snapshot, sent once they read
        again). A slow screen that still reads is never marked.

        "Took nothing": the line's count of bytes taken did not move (on the direct line the
        kernel's count of bytes the peer acknowledged, on the ASGI path the bytes its send
        took); where there is none, the unread bytes did not shrink."""
        now = time.monotonic()
        for screen in self.screens:
            if screen.view_due is not None and screen.view_due <= now:
                screen.view_due = None
                if not screen.resync_pending:
                    self.resync(screen)
            unsent, taken = screen.line.unsent(), screen.line.taken()
            if taken is not None and screen.taken is not None:
                idle = taken == screen.taken
            else:
                idle = unsent >= screen.unsent
            clogged = unsent >= STALL_BYTES and idle
            screen.unsent, screen.taken = unsent, taken
            if clogged and not screen.clogged:
                self.clogs += 1
                screen.flowing.clear()
            elif screen.clogged and not clogged:
                screen.flowing.set()
            screen.clogged = clogged

    def ping(self, message: dict[str, Any]) -> None:
        """A heartbeat to every screen with room for it (a full queue is already behind)."""
        text = orjson.dumps(message).decode()
        for screen in self.screens:
            if not screen.queue.full() and not screen.resync_pending:
                screen.queue.put_nowait(text)

    def count(self) -> dict[str, int]:
        out = {"supervisor": 0, "viewer": 0, "kiosk": 0}
        for s in self.screens:
            out[s.kind] = out.get(s.kind, 0) + 1
        return out

    @contextlib.asynccontextmanager
    async def subscribe(self, ws: WebSocket, *, kind: str, audience: Audience, session_id: str | None,
                        resume: Resume | None = None, view: View | None = None) -> AsyncIterator[Screen]:
        """A new screen; its first frame is a snapshot, or, for a screen coming back whose
        missed patches are all still held (`resume`), those patches and a heartbeat. A screen
        narrowed to a `view` always starts with a snapshot."""
        screen = Screen(ws, kind, audience, session_id, asyncio.Queue(self._queue_size), line_of(ws.scope),
                        view=view)
        screen.flowing.set()
        if resume is not None and view is None and len(resume.patches) < self._queue_size:
            screen.sent_seq = resume.seq
            for patch in resume.patches:
                screen.queue.put_nowait(patch)
            screen.queue.put_nowait(resume.heartbeat)
            self.resumes += 1
        else:
            self.resync(screen)
        self.screens.add(screen)
        try:
            yield screen
        finally:
            self.screens.discard(screen)
            if view is not None and not any(s.view == view for s in self.screens):
                # The last screen of a view: what the hub kept of it goes too (any name may be asked for).
                for key in [k for k in self._after if k[1] == view]:
                    del self._after[key]

    async def serve(self, screen: Screen) -> None:
        """Send the screen's queue and read its requests until either side closes.

        A screen only ever says `{"type": "resync"}`: a message over MAX_CLIENT_MESSAGE
        bytes closes its socket (1009), and so does a flood (1008), beyond a burst of
        CLIENT_BURST at CLIENT_MESSAGES_PER_S; what is not a JSON text ends it too."""
        sender = asyncio.create_task(self._send_loop(screen))
        flood = TokenBucket(CLIENT_MESSAGES_PER_S, CLIENT_BURST)
        try:
            while True:
                try:
                    received = await screen.ws.receive()
                except (WebSocketDisconnect, RuntimeError):
                    break
                text = received.get("text")
                if received["type"] != "websocket.receive" or not isinstance(text, str):
                    break
                if len(text) > MAX_CLIENT_MESSAGE or len(text.encode()) > MAX_CLIENT_MESSAGE:
                    await _close(screen.ws, CLOSE_TOO_BIG, "message too big")
                    break
                if not flood.take():
                    await _close(screen.ws, CLOSE_POLICY, "too many messages")
                    break
                try:
                    message = orjson.loads(text)
                except orjson.JSONDecodeError:
                    break
                if isinstance(message, dict) and message.get("type") == "resync":
                    self.resyncs += 1
                    self.resync(screen)
                if sender.done():
                    break
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    def _write_snapshot(self, screen: Screen, body: bytes) -> bool:
        """A snapshot written straight to a screen that takes bytes: framed once for every
        screen that gets the same one (hundreds of screens coming back after a restart each
        want the same 400 KB), no text copy per screen. False: the ASGI path must send it."""
        line = screen.line
        if line is None or not line.open():
            return False
        frame = self._framed(body)
        line.write(frame)
        screen.bytes_sent += len(frame)
        self.bytes_sent += len(frame)
        return True

    async def _send_loop(self, screen: Screen) -> None:
        ws = screen.ws
        try:
            while True:
                screen.busy = False
                item = await screen.queue.get()
                screen.busy = True
                await screen.flowing.wait()
                if item is RESYNC:
                    await self.ready.wait()  # a cluster node's copy of the line is loaded
                    screen.resync_pending = False  # from here on, changes come as patches
                    seq, body = (self._snapshot(screen.audience) if screen.view is None
                                 else self._snapshot(screen.audience, screen.view))
                    screen.sent_seq = seq
                    if self._write_snapshot(screen, body):
                        continue
                    text = self._decoded(body)
                elif isinstance(item, Published):
                    if item.seq <= screen.sent_seq:
                        continue  # already inside the snapshot this screen got
                    text = item.payloads[screen.audience].decode()
                    screen.sent_seq = item.seq
                    self.patches_sent += 1
                else:
                    text = item
                await ws.send_text(text)
                screen.bytes_sent += len(text)
                self.bytes_sent += len(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            return
        except Exception as e:  # a socket error we did not foresee must not kill the server
            log.info("screen send failed: %s", type(e).__name__)

    def close_session(self, session_id: str) -> int:
        """Close every socket of a session that logged out; returns how many."""
        return self.close_if(lambda s: s.session_id == session_id, CLOSE_LOGGED_OUT, "logged out")

    def close_if(self, doomed: Callable[[Screen], bool], code: int, reason: str) -> int:
        """Close every socket `doomed` picks (once: a closing one is not picked again)."""
        picked = [s for s in self.screens if s.closing is None and doomed(s)]
        for screen in picked:
            screen.closing = code
            task = asyncio.ensure_future(_close(screen.ws, code, reason))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return len(picked)

    async def close_all(self, code: int = CLOSE_GOING_AWAY, reason: str = "server restarting") -> None:
        await asyncio.gather(*(_close(s.ws, code, reason) for s in list(self.screens)),
                             return_exceptions=True)


class _PerBody(Generic[T]):
    """A value made from one of the engine's encoded snapshots (a frame, a text), kept while
    those bytes are current: the engine holds them, so their identity is the key."""

    def __init__(self, make: Callable[[bytes], T]) -> None:
        self._make = make
        self._held: dict[int, tuple[bytes, T]] = {}

    def __call__(self, body: bytes) -> T:
        held = self._held.get(id(body))
        if held is None or held[0] is not body:
            if len(self._held) >= 8:
                self._held.clear()
            held = self._held[id(body)] = (body, self._make(body))
        return held[1]


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    if ws.application_state == WebSocketState.CONNECTED:
        with contextlib.suppress(Exception):
            await ws.close(code, reason)
