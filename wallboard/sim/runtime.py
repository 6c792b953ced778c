"""Everything a running simulator holds: its tenants' call centers, one clock, one token book.

Without --tenants there is one Center, and the attributes below that name a world,
traffic, faults or a sender are that Center's, as they were before tenants.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson
from starlette.types import Scope

from wallboard.sim.auth import Account, TokenBook
from wallboard.sim.cdrs import CdrStore
from wallboard.sim.center import Center
from wallboard.sim.clock import LocalTime, SimClock
from wallboard.sim.faults import Faults
from wallboard.sim.hooks import HookRegistry, HookSender
from wallboard.sim.stats import RequestStats
from wallboard.sim.tenants import Tenant, TenantBook
from wallboard.sim.traffic import Traffic
from wallboard.sim.world import World


@dataclass
class Runtime:
    clock: SimClock
    local: LocalTime
    tokens: TokenBook
    tenants: TenantBook  # every tenant the secret token can see, the live ones included
    secret_token: str
    build_center: Callable[[Tenant], Center]  # a new tenant's world, as the options say
    centers: dict[str, Center] = field(default_factory=dict)  # in creation order; the first is the default
    _by_key: dict[str, Center] = field(default_factory=dict)
    _by_login: dict[str, tuple[Center, Account]] = field(default_factory=dict)
    _client: httpx.AsyncClient | None = None

    # -- tenants -----------------------------------------------------------------------

    def add(self, center: Center) -> Center:
        self.centers[center.id] = center
        self._by_key[center.api_key] = center
        for account in center.accounts:
            self._by_login[account.username] = (center, account)
        if self._client is not None:
            center.start(self._client)
        return center

    def create_tenant(self, tenant_id: str) -> Center | None:
        """A new live tenant (POST /v1/tenant); None when the id is taken."""
        tenant = self.tenants.create(tenant_id)
        return None if tenant is None else self.add(self.build_center(tenant))

    def center(self, tenant_id: str | None = None) -> Center | None:
        """A tenant by id; the default (first) one for None or ""."""
        if not tenant_id:
            return self.default
        return self.centers.get(tenant_id)

    def by_api_key(self, api_key: str) -> Center | None:
        return self._by_key.get(api_key)

    def by_login(self, username: str) -> tuple[Center, Account] | None:
        return self._by_login.get(username)

    def by_token(self, token: str) -> Center | None:
        owner = self.tokens.owner(token)
        return None if owner is None else self.centers.get(owner)

    def center_for(self, scope: Scope, body: bytes) -> Center:
        """Whose request this is, for its faults and counts: the tenant named by ?tenant= on
        /_sim/, by the api_key or username of a login, or by the bearer; else the default."""
        found: Center | None = None
        if scope["path"].startswith("/_sim"):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            found = self.center((query.get("tenant") or [""])[0])
        elif body:
            data: Any = None
            with contextlib.suppress(orjson.JSONDecodeError):
                data = orjson.loads(body)
            if isinstance(data, dict):
                if isinstance(key := data.get("api_key"), str):
                    found = self.by_api_key(key)
                elif isinstance(name := data.get("username"), str):
                    login = self.by_login(name)
                    found = login[0] if login else None
        else:
            for header, value in scope["headers"]:
                if header == b"authorization":
                    scheme, _, token = value.decode("latin-1").partition(" ")
                    if scheme.lower() == "bearer":
                        found = self.by_token(token.strip())
                    break
        return found or self.default

    # -- running -----------------------------------------------------------------------

    def start(self, client: httpx.AsyncClient) -> None:
        self._client = client
        for center in self.centers.values():
            center.start(client)

    async def stop(self) -> None:
        self._client = None
        await asyncio.gather(*(center.stop() for center in self.centers.values()))

    # -- the default tenant, under the names it had before tenants ----------------------

    @property
    def default(self) -> Center:
        return next(iter(self.centers.values()))

    @property
    def world(self) -> World:
        return self.default.world

    @property
    def traffic(self) -> Traffic:
        return self.default.traffic

    @property
    def faults(self) -> Faults:
        return self.default.faults

    @property
    def stats(self) -> RequestStats:
        return self.default.stats

    @property
    def registry(self) -> HookRegistry:
        return self.default.registry

    @property
    def sender(self) -> HookSender | None:
        return self.default.sender

    @property
    def cdrs(self) -> CdrStore:
        return self.default.cdrs

    def sync(self) -> None:
        self.default.sync()

    def flush(self) -> None:
        self.default.flush()

    def monitor_body(self) -> bytes:
        return self.default.monitor_body()
