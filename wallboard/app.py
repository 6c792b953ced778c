"""`create_app(settings)`: the wallboard's parts, wired, and the lifespan that starts and
stops them.

    PBX ── poll / webhook ──▶ Engine ── commit ──▶ PatchBus ──▶ Hub ──▶ screens
                               ▲                                 ▲
    web/ (routes) ─────── parts(request) ─────────────────────────┘

One path a webhook takes: web/hooks.py (check) → pbx/events.py (parse) → Engine.submit →
LiveState.apply_event → the turn's patch on the bus → Hub → each screen's socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Protocol

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from starlette.applications import Starlette
from starlette.middleware import Middleware

from wallboard import web
from wallboard.audit import AuditLog
from wallboard.engine import Engine
from wallboard.hub import PING_EVERY_S, Hub
from wallboard.metrics import Metrics
from wallboard.paths import web_dir
from wallboard.pbx.client import PbxClient
from wallboard.principal import Auth
from wallboard.ratelimit import RateLimiter
from wallboard.security import SecurityHeadersMiddleware
from wallboard.server import RawSendMiddleware
from wallboard.settings import Settings
from wallboard.web.context import Parts, PartsMiddleware
from wallboard.web.pages import make_templates

SWEEP_EVERY_S = 0.5  # how soon a screen that stopped reading stops being written to


def create_app(settings: Settings, *, http_client: httpx.AsyncClient | None = None,
               pbx: PbxClient | None = None) -> Starlette:
    http = http_client or httpx.AsyncClient(limits=httpx.Limits(max_connections=20))
    pbx = pbx or PbxClient(settings.pbx.base_url, settings.pbx.api_key, http=http, timeout=settings.pbx.timeout)
    metrics = Metrics(lambda: _live_figures(parts))  # read at scrape time, once `parts` exists
    engine = Engine(settings, pbx, observe_poll=metrics.observe_poll)
    hub = Hub(engine.snapshot_bytes, queue_size=settings.server.ws_queue_size)
    audit = AuditLog(settings.storage.path, tz=engine.time.zone)
    parts = Parts(settings=settings, engine=engine, hub=hub, pbx=pbx, audit=audit, auth=Auth(settings),
                  metrics=metrics, templates=make_templates(web_dir("templates")),
                  action_limiter=RateLimiter(60.0))
    scheduler = AsyncIOScheduler()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await audit.open()
        delivering = asyncio.get_running_loop().create_task(hub.run(engine.bus))
        scheduler.start()
        engine.start(scheduler)
        scheduler.add_job(_ping, "interval", args=[parts], seconds=PING_EVERY_S, id="ping", max_instances=1,
                          coalesce=True)
        scheduler.add_job(_sweep, "interval", args=[hub], seconds=SWEEP_EVERY_S, id="sweep", max_instances=1,
                          coalesce=True)
        try:
            yield
        finally:
            await stop_jobs(scheduler, engine)
            await hub.close_all()
            delivering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await delivering
            if http_client is None:
                await http.aclose()
            await audit.close()

    app = Starlette(routes=web.routes(), lifespan=lifespan, middleware=[
        Middleware(RawSendMiddleware),  # first: it must see the server's own send
        Middleware(SecurityHeadersMiddleware),
        Middleware(PartsMiddleware, parts=parts),
    ])
    app.state.parts = parts  # for the server adapter and tests; routes use web.context.parts()
    return app


def parts_of(app: Starlette) -> Parts:
    parts = getattr(app.state, "parts", None)
    if not isinstance(parts, Parts):
        raise TypeError("not an app made by create_app")
    return parts


class _Stoppable(Protocol):
    async def stop(self) -> None: ...


async def stop_jobs(scheduler: AsyncIOScheduler, engine: _Stoppable) -> None:
    """Stop every periodic job with none logged as failed. `shutdown()` takes effect a turn
    of the loop later and then cancels the jobs it finds unfinished, even those not started;
    `pause()` acts at once. So: pause, let the jobs already handed to the loop run (the
    poller's return at once when stopping), end the reads in flight, then shut down."""
    scheduler.pause()
    await engine.stop()
    scheduler.shutdown(wait=False)


async def _ping(parts: Parts) -> None:
    parts.hub.ping(parts.engine.heartbeat())


async def _sweep(hub: Hub) -> None:
    hub.sweep()


def _live_figures(parts: Parts) -> dict[str, Any]:
    hub = parts.hub
    return {"screens": hub.count(), "patches_sent": hub.patches_sent, "bytes_sent": hub.bytes_sent,
            "drops": hub.drops, "resyncs": hub.resyncs, "clogs": hub.clogs, "resumes": hub.resumes, "seq": parts.engine.seq,
            "pbx_requests": dict(parts.pbx.requests)}
