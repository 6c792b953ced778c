"""Tenants: the unit of isolation. Each tenant is one scope with its own parts — PBX client
and token, engine (state, seq, epoch, poller, webhook secret and registrations), bus, hub
and screens, logins and kiosk tokens, rate limits — so nothing of one is reachable from
another: isolation is where data is published, not a filter on the way out. The audit
log, the metrics registry, the templates and the HTTP connection pool are shared (the
audit rows and the per-tenant figures carry the tenant).

Without `[[tenants]]` a deployment has one tenant, `default`, at the root of the URL
space, and behaves exactly as a single-tenant wallboard. With `[[tenants]]` each tenant
lives under `/t/{id}/` and its webhooks arrive at `/hooks/pbx/{id}/{secret}`.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from starlette.templating import Jinja2Templates

from wallboard.audit import AuditLog
from wallboard.engine import Engine
from wallboard.hub import Hub
from wallboard.metrics import Metrics
from wallboard.pbx.client import PbxClient
from wallboard.principal import Auth
from wallboard.ratelimit import RateLimiter
from wallboard.sessions import SessionKeeper
from wallboard.settings import Settings, TenantSettings

if TYPE_CHECKING:  # the provider's board reads the tenants' parts
    from wallboard.provider import ProviderBoard

DEFAULT = "default"  # the one tenant of a deployment without [[tenants]]


@dataclass(frozen=True, slots=True)
class Parts:
    """One tenant's running parts: what a route of its board reaches (web/context.py)."""

    settings: Settings  # the tenant's own (Settings.for_tenant)
    engine: Engine
    hub: Hub
    pbx: PbxClient
    audit: AuditLog
    auth: Auth
    metrics: Metrics
    templates: Jinja2Templates
    action_limiter: RateLimiter  # supervisor actions, per supervisor, shared by every action route
    keeper: SessionKeeper  # re-checks its sessions and closes the screens of those that end
    tenant: str = DEFAULT
    base: str = ""  # the URL prefix of its pages: "" alone, "/t/{id}" with [[tenants]]


@dataclass
class Site:
    """The deployment: its tenants and what they share."""

    settings: Settings
    metrics: Metrics
    templates: Jinja2Templates
    audit: AuditLog
    http: httpx.AsyncClient
    tenants: dict[str, Parts] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    node_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    provider: ProviderBoard | None = None  # the provider's view, with [[tenants]]
    provider_hub: Hub | None = None

    def __post_init__(self) -> None:
        self.node_id = self.settings.cluster.node_id or self.node_id

    def role(self) -> str | list[str]:
        """What /readyz says this node is: one process alone leads its tenant; with
        [[tenants]], the tenants it leads."""
        return list(self.tenants) if self.multi else "leader"

    @property
    def multi(self) -> bool:
        return bool(self.settings.tenants)

    def build(self, tenant: TenantSettings | None, pbx: PbxClient | None = None) -> Parts:
        """The parts of one tenant (None: the deployment's only one, from [pbx])."""
        settings = self.settings if tenant is None else self.settings.for_tenant(tenant)
        tenant_id = DEFAULT if tenant is None else tenant.id
        base = "" if tenant is None else f"/t/{tenant_id}"
        pbx = pbx or PbxClient(settings.pbx.base_url, settings.pbx.api_key, http=self.http,
                               timeout=settings.pbx.timeout)
        engine = Engine(settings, pbx, observe_poll=self.metrics.observe_poll,
                        tenant=None if tenant is None else tenant_id)
        hub = Hub(engine.snapshot_bytes, queue_size=settings.server.ws_queue_size)
        auth = Auth(settings, scope=tenant_id, cookie_path=base + "/")
        keeper = SessionKeeper(auth, pbx, hub, recheck_seconds=settings.auth.recheck_minutes * 60)
        parts = Parts(settings=settings, engine=engine, hub=hub, pbx=pbx, audit=self.audit, auth=auth,
                      metrics=self.metrics, templates=self.templates, action_limiter=RateLimiter(60.0),
                      keeper=keeper, tenant=tenant_id, base=base)
        self.tenants[tenant_id] = parts
        self.names[tenant_id] = tenant.name if tenant is not None else DEFAULT
        return parts

    def phase(self, tenant_id: str) -> float:
        """Where in each poll interval a tenant's reads fall, from 0 to 1: spread by a hash of
        its id, so hundreds of tenants do not all ask the PBX at :00."""
        if not self.multi:
            return 0.0
        digest = hashlib.blake2b(tenant_id.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64
