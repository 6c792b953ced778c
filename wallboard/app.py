"""`create_app(settings)`: the wallboard's parts, wired, and the lifespan that starts and
stops them.

    PBX ── poll / webhook ──▶ Engine ── commit ──▶ PatchBus ──▶ Hub ──▶ screens
                               ▲                                 ▲
    web/ (routes) ─────── parts(request) ─────────────────────────┘

One engine, bus and hub per tenant (tenancy.py); without `[[tenants]]` there is one.
One path a webhook takes: web/hooks.py (check) → pbx/events.py (parse) → Engine.submit →
LiveState.apply_event → the turn's patch on the bus → Hub → each screen's socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from starlette.applications import Starlette
from starlette.middleware import Middleware

from wallboard import web
from wallboard.alert_metrics import AlertCollector
from wallboard.audit import AuditLog
from wallboard.floor_metrics import FloorCollector
from wallboard.history.recorder import History
from wallboard.metrics import Metrics
from wallboard.paths import web_dir
from wallboard.pbx.client import PbxClient
from wallboard.provider import ProviderView
from wallboard.security import SecurityHeadersMiddleware, internal_error_handler, security_headers
from wallboard.server import RawSendMiddleware
from wallboard.settings import Settings
from wallboard.storage import Database, StorageUnavailable
from wallboard.tenancy import Parts, Site
from wallboard.tenant_store import TenantStore, effective_tenants, with_stored
from wallboard.web.context import PartsMiddleware
from wallboard.web.pages import make_templates

TENANTS_EVERY_S = 2.0  # the stored tenants are read again this often


def create_app(settings: Settings, *, http_client: httpx.AsyncClient | None = None,
               pbx: PbxClient | None = None) -> Starlette:
    """The wallboard; `pbx` replaces the PBX client of a deployment without tenants (tests)."""
    configured = settings
    settings = with_stored(configured)  # tenants added by `wallboard tenants add` run too
    # One storage database for the audit log, the boards, the tenants and the history: SQLite at
    # storage.path, or the PostgreSQL every node shares. Reached on first use: when it cannot be,
    # the board keeps running and supervisor actions are refused (nothing done without its audit row).
    db = Database.from_settings(settings)
    store = TenantStore(db)
    # One pool for every tenant: they share the PBX's API host.
    http = http_client or httpx.AsyncClient(limits=httpx.Limits(max_connections=20))
    metrics = Metrics(lambda: _live_figures(site))  # read at scrape time
    audit = AuditLog(db, tz=ZoneInfo(settings.pbx.timezone))
    site = Site(settings, metrics, make_templates(web_dir("templates")), audit, http, db=db)
    history = site.history = History(settings, db)  # opened on first use: a database that is down never stops the board
    metrics.registry.register(FloorCollector(site))
    metrics.registry.register(AlertCollector(site))
    provider: ProviderView | None = None
    if settings.tenants:
        for tenant in settings.tenants:
            site.build(tenant)
        provider = ProviderView(site)
    else:
        site.build(None, pbx)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await audit.open()
        await site.start()
        if provider is not None:
            provider.start(site.scheduler)
            site.scheduler.add_job(_sync_tenants, "interval", args=[site, store, configured],
                                   seconds=TENANTS_EVERY_S,
                                   id="tenants", max_instances=1, coalesce=True)
        try:
            yield
        finally:
            await site.stop()
            await close_all(site)
            if provider is not None:
                await provider.stop()
            if http_client is None:
                await http.aclose()
            await audit.close()
            await history.close()
            await db.close()

    headers = security_headers(settings)
    app = Starlette(routes=web.routes(), lifespan=lifespan, middleware=[
        Middleware(RawSendMiddleware),  # first: it must see the server's own send
        Middleware(SecurityHeadersMiddleware, headers=headers),
        Middleware(PartsMiddleware, site=site, provider=provider),
    ], exception_handlers={Exception: internal_error_handler(headers)})
    app.state.site = site  # for the server adapter and tests; routes use web.context.parts()
    return app


def site_of(app: Starlette) -> Site:
    site = getattr(app.state, "site", None)
    if not isinstance(site, Site):
        raise TypeError("not an app made by create_app")
    return site


def parts_of(app: Starlette, tenant: str | None = None) -> Parts:
    """One tenant's parts (None: the only one of a deployment without tenants)."""
    site = site_of(app)
    return site.tenants[tenant or next(iter(site.tenants))]


async def close_screens(app: Starlette) -> None:
    """Tell every screen the server is going away (the server adapter's before-shutdown)."""
    await close_all(site_of(app))


async def close_all(site: Site) -> None:
    await asyncio.gather(*(parts.hub.close_all() for parts in site.tenants.values()))


async def _sync_tenants(site: Site, store: TenantStore, configured: Settings) -> None:
    """Tenants added, changed, disabled or removed in the database since the last look; those
    running stay as they are while it cannot be reached."""
    try:
        stored = await store.all()
    except StorageUnavailable:
        return
    await site.sync(effective_tenants(configured, stored))


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


def _live_figures(site: Site) -> dict[str, Any]:
    """The hubs' and PBX clients' figures, added up over the tenants."""
    tenants = site.tenants.values()
    screens: Counter[str] = Counter()
    requests: Counter[str] = Counter()
    for parts in tenants:
        screens.update(parts.hub.count())
        requests.update(parts.pbx.requests)
    total = {name: sum(getattr(parts.hub, name) for parts in tenants)
             for name in ("patches_sent", "bytes_sent", "drops", "resyncs", "clogs", "resumes")}
    return {"screens": {"supervisor": 0, "viewer": 0, "kiosk": 0, **screens}, **total,
            "seq": max((parts.engine.seq for parts in tenants), default=0), "pbx_requests": dict(requests)}
