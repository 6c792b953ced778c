"""The one typed door from a route to the running parts, and who is asking.

`create_app` builds a `Site` (the deployment) with one `Parts` per tenant. For every
request `PartsMiddleware` picks the tenant from the path — `/t/{id}/…` and
`/hooks/pbx/{id}/{secret}` with `[[tenants]]`, everything without — and puts its parts
and the principal (checked against that tenant's sessions and kiosk tokens only) in the
scope. A route gets them with `parts(request)` and `principal_of(request)`, never by
reaching into `request.app.state`. Paths outside any tenant (static files, health,
metrics, the provider view) have no parts; anything else there is 404.
"""

from __future__ import annotations

import re

from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from wallboard.principal import Principal
from wallboard.provider import ProviderView
from wallboard.settings import Settings
from wallboard.tenancy import DEFAULT, Parts, Site

PARTS_KEY = "wallboard.parts"
SITE_KEY = "wallboard.site"
PRINCIPAL_KEY = "principal"
PROVIDER_KEY = "wallboard.provider"
TENANT_PATH = re.compile(r"^/t/([a-z0-9-]{1,32})(/.*)?$")
TENANT_HOOK = re.compile(r"^/hooks/pbx/([a-z0-9-]{1,32})/([^/]+)$")
# With [[tenants]], the paths that belong to no tenant.
SITE_PATHS = ("/static/", "/healthz", "/readyz", "/metrics", "/provider")


class PartsMiddleware:
    """Puts the site, the tenant's parts and the principal (a Principal or None) in every
    http and websocket scope. `parts=` alone: an app around one tenant's parts (tests)."""

    def __init__(self, app: ASGIApp, site: Site | None = None, parts: Parts | None = None,
                 provider: ProviderView | None = None) -> None:
        self.app = app
        self.site = site
        self.parts = parts
        self.provider = provider

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        found = self._choose(scope)
        if isinstance(found, Response):
            if scope["type"] == "http":
                await found(scope, receive, send)
            else:
                await send({"type": "websocket.close", "code": 4404})
            return
        scope, parts = found
        scope[SITE_KEY] = self.site
        scope[PARTS_KEY] = parts
        scope[PROVIDER_KEY] = self.provider
        scope[PRINCIPAL_KEY] = await parts.auth.principal(HTTPConnection(scope)) if parts else None
        await self.app(scope, receive, send)

    def _choose(self, scope: Scope) -> tuple[Scope, Parts | None] | Response:
        if self.parts is not None:
            return scope, self.parts
        site = self.site
        assert site is not None
        if not site.multi:
            return scope, site.tenants.get(DEFAULT)
        path: str = scope["path"]
        if match := TENANT_PATH.match(path):
            tenant = site.tenants.get(match[1])
            if tenant is None:
                return PlainTextResponse("Not Found", status_code=404)
            if match[2] is None:
                return RedirectResponse(path + "/", status_code=308)
            return {**scope, "root_path": scope.get("root_path", "") + tenant.base}, tenant
        if match := TENANT_HOOK.match(path):
            tenant = site.tenants.get(match[1])
            if tenant is None:
                return PlainTextResponse("Not Found", status_code=404)
            inner = f"/hooks/pbx/{match[2]}"
            return {**scope, "path": inner, "raw_path": inner.encode()}, tenant
        if path.startswith(SITE_PATHS):
            return scope, None
        return PlainTextResponse("Not Found: each call center's board is under /t/<id>/", status_code=404)


def parts(conn: HTTPConnection) -> Parts:
    found = conn.scope.get(PARTS_KEY)
    if not isinstance(found, Parts):
        raise RuntimeError("no tenant's parts here: PartsMiddleware is not installed or the path is the site's")
    return found


def site(conn: HTTPConnection) -> Site:
    found = conn.scope.get(SITE_KEY)
    if not isinstance(found, Site):
        raise RuntimeError("PartsMiddleware is not installed")
    return found


def provider_view(conn: HTTPConnection) -> ProviderView | None:
    """The provider's view, with [[tenants]]; None without."""
    found = conn.scope.get(PROVIDER_KEY)
    return found if isinstance(found, ProviderView) else None


def settings_of(conn: HTTPConnection) -> Settings:
    """The tenant's settings on a tenant's path; the deployment's on the site's."""
    found = conn.scope.get(PARTS_KEY)
    return found.settings if isinstance(found, Parts) else site(conn).settings


def principal_of(conn: HTTPConnection) -> Principal | None:
    principal = conn.scope.get(PRINCIPAL_KEY)
    return principal if isinstance(principal, Principal) else None
