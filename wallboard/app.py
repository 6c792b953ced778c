"""`create_app(settings)`: the wallboard's parts, wired, and the lifespan that
starts and stops them (scheduler, PBX client, hub, audit log).

One path a webhook takes: webhooks.py (check, parse) → LiveState.apply_event →
`publish` (seq, patch) → Hub → each screen's queue → the browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket

from wallboard import actions, auth, pages
from wallboard.audit import AuditLog
from wallboard.frames import RawSendMiddleware
from wallboard.hub import PING_EVERY_S, Hub
from wallboard.masking import screen_state
from wallboard.metrics import Metrics
from wallboard.patches import Op, snapshot_message
from wallboard.paths import web_dir
from wallboard.pbx.client import PbxClient
from wallboard.pbx.errors import PbxError
from wallboard.pbx.times import PbxTime
from wallboard.poller import Poller, now_ms
from wallboard.security import SecurityHeadersMiddleware, origin_allowed
from wallboard.settings import Settings
from wallboard.state import CallEvent, LiveState
from wallboard.webhooks import callback_url, load_secret, receiver_route, register

log = logging.getLogger("wallboard.app")

SWEEP_EVERY_S = 0.5  # how soon a screen that stopped reading stops being written to
CLOSE_UNAUTHENTICATED = 4401


class Wallboard:
    """The running parts, reachable from routes as `request.app.state.X`."""

    def __init__(self, settings: Settings, http: httpx.AsyncClient, pbx: PbxClient | None) -> None:
        self.settings = settings
        self.http = http
        self.pbx = pbx or PbxClient(settings.pbx.base_url, settings.pbx.api_key, http=http,
                                    timeout=settings.pbx.timeout)
        self.time = PbxTime(settings.pbx.timezone)
        self.live = LiveState(self.time, sla_seconds=settings.display.sla_seconds, now_ms=now_ms())
        self.hub = Hub(self.snapshot_text, queue_size=settings.server.ws_queue_size)
        self.metrics = Metrics(self.live_figures)
        self.poller = Poller(settings, self.pbx, self.live, self.publish, self.metrics.observe_poll)
        self.audit = AuditLog(settings.storage.path, tz=self.time.zone)
        self.webhook_secret = load_secret(settings.webhook.secret,
                                          Path(settings.storage.path).parent)
        self.callback_url = callback_url(settings.server.public_url, self.webhook_secret)
        self.hooks_registered: dict[str, str] | None = None
        self._snapshots: dict[tuple[int, bool, int], str] = {}
        self._pending: list[Op] = []
        self._flush_soon: asyncio.Handle | None = None

    # -- the one place that turns a change into a patch ------------------------

    def publish(self, ops: list[Op]) -> None:
        """Queue a change for the screens; everything published in this turn of the
        event loop goes out as one patch at its end.

        Under load a turn holds many webhooks, so the batch grows with the rate and the
        cost per screen stays one frame per turn; a lone change waits for nothing. A
        snapshot sends the batch first, so it shows exactly its seq: a patch may leave
        out what a screen can tell from the state before it (patches.py).
        """
        if not ops:
            return
        self._pending += ops
        if self._flush_soon is not None:
            return
        try:
            self._flush_soon = asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no loop (a script or a unit test): at once
            self.flush()

    def flush(self) -> None:
        """Send the batch: at the end of the turn, or before a snapshot is taken."""
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        if not self._pending:
            return
        patch = self.live.commit(self._pending)
        self._pending = []
        if patch is not None:
            self.hub.publish(patch)

    def apply_event(self, event: CallEvent) -> None:
        self.publish(self.live.apply_event(event))

    def set_monitor(self, call_id: str, info: dict[str, Any] | None) -> None:
        self.publish(self.live.set_monitor(call_id, info, now_ms()))

    def snapshot(self, masked: bool) -> dict[str, Any]:
        self.flush()
        state = self.live.snapshot(now_ms())
        return screen_state(state, masked)

    @property
    def calls(self) -> dict[str, dict[str, Any]]:
        return self.live.calls

    def snapshot_text(self, masked: bool) -> tuple[int, str]:
        """Encoded once per seq, audience and second, however many screens ask."""
        self.flush()
        now = now_ms()
        key = (self.live.seq, masked, now // 1000)
        text = self._snapshots.get(key)
        if text is None:
            self._snapshots.clear()
            message = snapshot_message(self.live.seq, self.snapshot(masked))
            text = self._snapshots[key] = orjson.dumps(message).decode()
        return self.live.seq, text

    def live_figures(self) -> dict[str, Any]:
        hub = self.hub
        return {"screens": hub.count(), "patches_sent": hub.patches_sent,
                "bytes_sent": hub.bytes_sent, "drops": hub.drops, "resyncs": hub.resyncs,
                "clogs": hub.clogs,
                "seq": self.live.seq, "pbx_requests": dict(self.pbx.requests)}

    # -- periodic upkeep --------------------------------------------------------

    async def tick(self) -> None:
        now = now_ms()
        self.publish(self.live.tick(now) + self.live.expire_sources(self.poller.max_ages(), now))

    async def ping(self) -> None:
        self.hub.ping({"type": "ping", "now": now_ms(), "seq": self.live.seq, "at": self.live.last_heard()})

    async def sweep(self) -> None:
        self.hub.sweep()

    async def register_hooks(self) -> bool:
        try:
            self.hooks_registered = await register(self.pbx, self.callback_url,
                                                   self.webhook_secret, self.settings.webhook.events)
        except PbxError as e:
            log.warning("webhook registration failed, will retry: %s", e)
            return False
        log.info("webhooks registered: %s", ", ".join(f"{k} {v}" for k, v in self.hooks_registered.items()))
        return True


def create_app(settings: Settings, *, http_client: httpx.AsyncClient | None = None,
               pbx: PbxClient | None = None) -> Starlette:
    http = http_client or httpx.AsyncClient(limits=httpx.Limits(max_connections=20))
    wb = Wallboard(settings, http, pbx)
    scheduler = AsyncIOScheduler()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await wb.audit.open()
        scheduler.start()
        wb.poller.schedule(scheduler)
        scheduler.add_job(wb.tick, "interval", seconds=1.0, id="tick", max_instances=1, coalesce=True)
        scheduler.add_job(wb.ping, "interval", seconds=PING_EVERY_S, id="ping", max_instances=1,
                          coalesce=True)
        scheduler.add_job(wb.sweep, "interval", seconds=SWEEP_EVERY_S, id="sweep", max_instances=1,
                          coalesce=True)
        if settings.webhook.register:
            registered = asyncio.get_running_loop().create_task(_register_until_done(wb, scheduler))
        try:
            yield
        finally:
            if settings.webhook.register and not registered.done():
                registered.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await registered  # it uses the HTTP client closed below
            await stop_jobs(scheduler, wb.poller)
            await wb.hub.close_all()
            if http_client is None:
                await http.aclose()
            await wb.audit.close()

    app = Starlette(routes=_routes(wb), lifespan=lifespan, middleware=[
        Middleware(RawSendMiddleware),  # first: it must see the server's own send
        Middleware(SecurityHeadersMiddleware),
        Middleware(auth.AuthMiddleware, auth=auth.Auth(settings)),
    ])
    app.state.wallboard = wb
    app.state.settings = settings
    app.state.pbx = wb.pbx
    app.state.live = wb
    app.state.hub = wb.hub
    app.state.audit = wb.audit
    app.state.templates = pages.make_templates(web_dir("templates"))
    return app


async def stop_jobs(scheduler: AsyncIOScheduler, poller: Poller) -> None:
    """Stop every periodic job with none logged as failed. `shutdown()` takes effect a turn
    of the loop later and then cancels the jobs it finds unfinished, even those not started;
    `pause()` acts at once. So: pause, let the jobs already handed to the loop run (the
    poller's return at once when stopping), end the reads in flight, then shut down."""
    scheduler.pause()
    await poller.stop()
    scheduler.shutdown(wait=False)


async def _register_until_done(wb: Wallboard, scheduler: AsyncIOScheduler) -> None:
    delay = 2.0
    while not await wb.register_hooks():
        await asyncio.sleep(delay)
        delay = min(delay * 2, 60.0)


def _routes(wb: Wallboard) -> list[BaseRoute]:
    settings = wb.settings

    async def api_state(request: Request) -> Response:
        principal = auth.principal_of(request)
        if principal is None:
            return JSONResponse({"error": "login required"}, status_code=401)
        return Response(orjson.dumps(wb.snapshot(principal.masked)), media_type="application/json")

    async def ws_endpoint(ws: WebSocket) -> None:
        origin = ws.headers.get("origin")
        if origin is not None and not origin_allowed(origin, settings):
            log.info("websocket refused: origin %s not allowed", origin[:80])
            await ws.close(code=4403)
            return
        principal = auth.principal_of(ws)
        await ws.accept()
        if principal is None:
            await ws.close(code=CLOSE_UNAUTHENTICATED)
            return
        async with wb.hub.subscribe(ws, kind=principal.role, masked=principal.masked,
                                    session_id=principal.session_id) as screen:
            await wb.hub.serve(screen)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        failing = {s: v["error"] or "no answer yet" for s, v in wb.live.sources.items()
                   if s in ("agents", "calls") and not v["ok"]}
        if not wb.poller.first_success.is_set() or failing:
            reasons = "; ".join(f"{s}: {e}" for s, e in failing.items()) or "first poll pending"
            return JSONResponse({"ready": False, "reason": reasons}, status_code=503)
        return JSONResponse({"ready": True, "webhooks": wb.hooks_registered})

    async def metrics(request: Request) -> Response:
        if not settings.server.metrics_public:
            principal = auth.principal_of(request)
            if principal is None or not principal.is_supervisor:
                return PlainTextResponse("forbidden", status_code=403)
        return Response(wb.metrics.render(), media_type="text/plain; version=0.0.4")

    def count_webhook(result: str) -> None:
        wb.metrics.count_webhook(result)
        if result in ("rejected", "failed"):
            wb.live.sources["webhooks"]["rejected"] += 1

    return [
        *pages.routes(),
        *auth.routes(),
        *actions.routes(),
        Route("/api/state", api_state),
        WebSocketRoute("/ws", ws_endpoint),
        receiver_route(wb.webhook_secret, wb.time, wb.apply_event, count_webhook),
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Mount("/static", StaticFiles(directory=web_dir("static")), name="static"),
    ]

