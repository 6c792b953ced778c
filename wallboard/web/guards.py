"""What every route checks the same way: who may enter, the language of the answer, the
shape of a refusal, and the small inputs (extensions, next paths, client address)."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from wallboard.i18n import catalogue, pick_language, t
from wallboard.principal import Principal
from wallboard.security import CsrfError, require_csrf
from wallboard.web.context import parts, principal_of, settings_of, site

EXT_PATTERN = re.compile(r"^[0-9]{1,16}$")


def language(conn: HTTPConnection) -> str:
    return pick_language(conn, settings_of(conn).display.language)


def error_message(lang: str, code: str, ext: str | None = None) -> str:
    """The catalogue's words for an error code; codes it does not know get error.UNKNOWN."""
    key = f"error.{code}"
    if key not in catalogue(lang) and key not in catalogue("en"):
        key = "error.UNKNOWN"
    return t(lang, key, ext=ext or "", code=code)


def error_response(status: int, code: str, lang: str, ext: str | None = None) -> JSONResponse:
    """The JSON answer of a refused API request: {"ok": false, "error", "message"}."""
    return JSONResponse(
        {"ok": False, "error": code, "message": error_message(lang, code, ext)}, status_code=status
    )


def base(conn: HTTPConnection) -> str:
    """The URL prefix of this tenant's pages: "" alone, "/t/{id}" with [[tenants]]."""
    return parts(conn).base


def json_request(request: Request) -> bool:
    """A JSON route takes a JSON body or none; a form or anything else it refuses (415)
    before reading it."""
    declared = request.headers.get("content-type")
    return declared is None or declared.split(";", 1)[0].strip().lower() == "application/json"


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"{base(request)}/login?next={quote(target, safe='')}", status_code=303)


def supervisor(request: Request, *, page: bool = False) -> Principal | Response:
    """The supervisor asking, or the refusal to send: for an API 401/403 as JSON, for a
    page the login form or a plain 403."""
    principal = principal_of(request)
    if principal is not None and principal.is_supervisor:
        return principal
    lang = language(request)
    if principal is None:
        return login_redirect(request) if page else error_response(401, "UNAUTHORIZED", lang)
    if page:
        return PlainTextResponse(error_message(lang, "FORBIDDEN"), status_code=403)
    return error_response(403, "FORBIDDEN", lang)


def valid_ext(value: object) -> str | None:
    """The extension as text when it looks like one, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and EXT_PATTERN.match(value.strip()):
        return value.strip()
    return None


def safe_next(value: object, home: str = "/") -> str:
    """A local path to go to after login; anything else (another site) becomes `home`."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith(("//", "/\\")):
        return home
    if any(ord(ch) < 0x20 or ch == "\\" for ch in value):
        return home
    return value


def client_ip(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else ""


def provider_token_ok(conn: HTTPConnection) -> bool:
    """?token= is one of [provider] tokens (compared in constant time, every one of them)."""
    given = conn.query_params.get("token", "").encode()
    found = False
    for token in site(conn).settings.provider.tokens:
        found |= bool(token) and hmac.compare_digest(given, token.encode())
    return found


@dataclass(frozen=True, slots=True)
class JsonBody:
    value: Any  # the decoded body; None when there was none or it was not JSON


async def json_change(request: Request, who: Principal) -> JsonBody | Response:
    """The checks of a supervisor's JSON request that changes something, after who and what:
    a JSON body (415), the CSRF token (403), the supervisor's actions budget (429); then the
    body."""
    lang = language(request)
    if not json_request(request):
        return error_response(415, "UNSUPPORTED_MEDIA_TYPE", lang)
    try:
        await require_csrf(request, who, form=False)
    except CsrfError:
        return error_response(403, "CSRF", lang)
    found = parts(request)
    if not await found.action_limiter.hit_async(who.name, found.settings.auth.actions_per_minute):
        return error_response(429, "RATE_LIMITED", lang)
    try:
        return JsonBody(await request.json())
    except ValueError:
        return JsonBody(None)
