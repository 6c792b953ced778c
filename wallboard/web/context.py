"""The one typed door from a route to the running parts, and who is asking.

`create_app` builds one `Parts` and keeps it on the app; a route gets it with
`parts(request)` and a principal with `principal_of(request)` — never by reaching into
`request.app.state`.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from wallboard.audit import AuditLog
from wallboard.engine import Engine
from wallboard.hub import Hub
from wallboard.metrics import Metrics
from wallboard.pbx.client import PbxClient
from wallboard.principal import Auth, Principal
from wallboard.ratelimit import RateLimiter
from wallboard.settings import Settings

PARTS_KEY = "wallboard.parts"
PRINCIPAL_KEY = "principal"


@dataclass(frozen=True, slots=True)
class Parts:
    settings: Settings
    engine: Engine
    hub: Hub
    pbx: PbxClient
    audit: AuditLog
    auth: Auth
    metrics: Metrics
    templates: Jinja2Templates
    action_limiter: RateLimiter  # supervisor actions, per supervisor, shared by every action route


class PartsMiddleware:
    """Puts the parts and the principal (a Principal or None) in every http and websocket scope."""

    def __init__(self, app: ASGIApp, parts: Parts) -> None:
        self.app = app
        self.parts = parts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope[PARTS_KEY] = self.parts
            scope[PRINCIPAL_KEY] = self.parts.auth.principal_for(HTTPConnection(scope))
        await self.app(scope, receive, send)


def parts(conn: HTTPConnection) -> Parts:
    found = conn.scope.get(PARTS_KEY)
    if not isinstance(found, Parts):
        raise RuntimeError("PartsMiddleware is not installed")
    return found


def principal_of(conn: HTTPConnection) -> Principal | None:
    principal = conn.scope.get(PRINCIPAL_KEY)
    return principal if isinstance(principal, Principal) else None
