"""Security headers on every HTTP response, the CSRF check, and the WebSocket Origin check."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wallboard.principal import Principal
from wallboard.settings import Settings

Header = tuple[bytes, bytes]


def content_security_policy(public_url: str | None = None) -> str:
    """The page policy. No 'unsafe-inline' anywhere: every script and style is a file we
    serve, and server data reaches the page through data-* attributes or a JSON <script>.
    Pages connect only to their own origin: 'self', and the ws:// and wss:// of
    public_url's host (older browsers do not count a WebSocket to the page's own host
    as 'self')."""
    connect = ["'self'"]
    origin = _origin(public_url) if public_url else None
    if origin is not None:
        host = origin.split("://", 1)[1]
        connect += [f"ws://{host}", f"wss://{host}"]
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {' '.join(connect)}; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    )


CONTENT_SECURITY_POLICY = content_security_policy()
SECURITY_HEADERS: tuple[Header, ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
)
HSTS = (b"strict-transport-security", b"max-age=31536000")
# Pages and the API hold what a shared or lost machine must not keep: no copy anywhere.
NO_STORE = (b"cache-control", b"no-store")
CACHEABLE_PREFIX = "/static/"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def security_headers(settings: Settings) -> tuple[Header, ...]:
    """The headers of every answer for these settings: the policy names public_url, and
    HSTS is sent when public_url is https."""
    csp = (b"content-security-policy", content_security_policy(settings.server.public_url).encode())
    headers = (csp, *SECURITY_HEADERS[1:])
    if settings.server.public_url.lower().startswith("https://"):
        headers = (*headers, HSTS)
    return headers


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response that does not set its own, and
    `Cache-Control: no-store` to all but the static files."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False,
                 headers: tuple[Header, ...] = SECURITY_HEADERS) -> None:
        self.app = app
        self.headers = (*headers, HSTS) if hsts and HSTS not in headers else headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers if scope["path"].startswith(CACHEABLE_PREFIX) else (*self.headers, NO_STORE)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in extra if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def internal_error_handler(headers: tuple[Header, ...]
                           ) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The answer to an unexpected error. Starlette sends it from outside every middleware
    (ServerErrorMiddleware), so it carries the security headers itself; it says nothing
    of the error, which goes to the log."""
    fixed = {name.decode(): value.decode() for name, value in (*headers, NO_STORE)}

    async def internal_error(request: Request, exc: Exception) -> Response:
        return PlainTextResponse("Internal Server Error", status_code=500, headers=fixed)

    return internal_error


class CsrfError(HTTPException):
    def __init__(self) -> None:
        super().__init__(403, "CSRF token missing or wrong")


def tokens_match(given: str, expected: str) -> bool:
    """Constant-time comparison; an empty expected token never matches."""
    return bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").lower().startswith(_FORM_TYPES)


async def submitted_csrf(request: Request, *, form: bool = True) -> str:
    """The token the browser sent: the X-CSRF-Token header, else (for a route that takes
    a form) the form field. A JSON route passes form=False: its body is JSON, read once."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if form and is_form(request):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def require_csrf(request: Request, principal: Principal, *, form: bool = True) -> None:
    """Raise CsrfError (403) unless the request carries the principal's token.

    Asked of every state-changing request, in auth mode "none" too: the demo
    principal has a per-process token that only our own pages can read.
    """
    if not tokens_match(await submitted_csrf(request, form=form), principal.csrf_token):
        raise CsrfError()


def _origin(url: str, *, header: bool = False) -> str | None:
    """scheme://host[:port] in the form browsers send in Origin, or None.

    A configured URL may carry a path (public_url behind a proxy prefix); an
    Origin header never does, so with header=True one that has a path is refused.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.username is not None or (
        header and (parts.path or parts.query or parts.fragment)
    ):
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def allowed_origins(settings: Settings) -> frozenset[str]:
    urls = [settings.server.public_url, *settings.server.allowed_origins]
    return frozenset(o for o in map(_origin, urls) if o is not None)


def origin_allowed(origin: str | None, settings: Settings) -> bool:
    """True when `origin` is public_url's origin or one of server.allowed_origins.

    Exact match after writing both sides the way browsers do (lower-case
    scheme and host, no default port): no wildcards, no suffix matching, and a
    missing or "null" Origin is refused.
    """
    if not origin or origin == "null":
        return False
    normal = _origin(origin, header=True)
    return normal is not None and normal in allowed_origins(settings)
