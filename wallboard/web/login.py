"""Logging in and out with a PBX account, and a supervisor's own extension.

A PBX account whose level is `admin` is a supervisor; any other level is a viewer.
The login form is a signed double submit (principal.Auth.login_csrf), so it needs no
session to be safe from cross-site posts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from wallboard.i18n import t
from wallboard.logs import loggable
from wallboard.pbx.errors import PbxError
from wallboard.principal import LOGIN_CSRF_COOKIE, Auth, Credential, Principal, Role
from wallboard.ratelimit import SharedUnavailable, retry_after_header
from wallboard.security import CsrfError, require_csrf, submitted_csrf, tokens_match
from wallboard.web.context import parts, principal_of
from wallboard.web.guards import (
    base,
    client_ip,
    error_response,
    json_request,
    language,
    safe_next,
    supervisor,
    valid_ext,
)
from wallboard.web.pages import render

log = logging.getLogger("wallboard.auth")

# These PBX errors mean "we could not ask", not "the password is wrong".
_UNREACHABLE_CODES = frozenset({"TIMEOUT", "UNREACHABLE", "BAD_RESPONSE"})
SHARED_DOWN_RETRY_S = 5.0


def _login_page(request: Request, auth: Auth, *, status: int = 200, error: str | None = None,
                username: str = "", ext: str = "", next_path: str = "/") -> Response:
    cookie, token = auth.login_csrf(request)
    response = render(request, "login.html", {
        "csrf_token": token, "next": next_path, "username": username, "ext": ext, "error": error,
    }, status_code=status)
    auth.set_login_csrf_cookie(response, cookie)
    return response


async def login_form(request: Request) -> Response:
    auth = parts(request).auth
    next_path = safe_next(request.query_params.get("next"), base(request) + "/")
    principal = principal_of(request)
    if principal is not None and principal.role != "kiosk":
        return RedirectResponse(next_path, status_code=303)
    return _login_page(request, auth, next_path=next_path)


def _text_field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def login_submit(request: Request) -> Response:
    auth = parts(request).auth
    lang = language(request)
    form = await request.form()
    username = _text_field(form, "username").strip()
    password = _text_field(form, "password")
    ext_text = _text_field(form, "ext").strip()
    next_path = safe_next(_text_field(form, "next"), base(request) + "/")
    ip = client_ip(request)

    def page(status: int, key: str) -> Response:
        return _login_page(request, auth, status=status, error=t(lang, key, ext=ext_text),
                           username=username, ext=ext_text, next_path=next_path)

    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not tokens_match(await submitted_csrf(request), auth.login_csrf(request)[1]):
        log.warning("login refused: bad CSRF token from %s", ip)
        return page(403, "error.CSRF")
    ext = valid_ext(ext_text) if ext_text else None
    if ext_text and ext is None:
        return page(400, "error.BAD_REQUEST")
    if not username or not password:
        return page(400, "login.error.invalid")
    try:  # per address, per username, per both; with cluster.redis_url, across every node
        wait = await auth.login_budgets.attempt_async(ip, username)
    except SharedUnavailable:
        return _shared_down(request, auth, page)
    if wait:
        log.warning("login refused for %s from %s: too many attempts", loggable(username), ip)
        seconds = retry_after_header(wait)
        refused = _login_page(request, auth, status=429, username=username, ext=ext_text, next_path=next_path,
                              error=t(lang, "login.error.rate_limited", seconds=seconds))
        refused.headers["Retry-After"] = seconds
        return refused
    try:
        account = await parts(request).pbx.login(username, password)
    except PbxError as error:
        if error.code in _UNREACHABLE_CODES or error.code.startswith("HTTP_5"):
            log.warning("login of %s failed: the PBX did not answer (%s)",
                        loggable(username), error.code)
            return page(503, "login.error.unreachable")
        log.info("login refused for %s from %s: %s", loggable(username), ip, error.code)
        return page(401, "login.error.invalid")
    role: Role = "supervisor" if account.level == "admin" else "viewer"
    try:
        await auth.login_budgets.succeeded_async(ip, username)
        session = await auth.sessions.begin(username, role, ext, credential=Credential(password))
    except SharedUnavailable:
        return _shared_down(request, auth, page)
    brought = principal_of(request)  # the session this browser came with, if any: no fixation
    if brought is not None and brought.session_id is not None:
        await auth.sessions.finish(brought.session_id)
        parts(request).hub.close_session(brought.session_id)
    log.info("login ok: %s as %s from %s", loggable(username), role, ip)
    response = RedirectResponse(next_path, status_code=303)
    auth.set_session_cookie(response, session)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=base(request) + "/login")
    return response


def _shared_down(request: Request, auth: Auth, page: Callable[[int, str], Response]) -> Response:
    """503: the sessions and login budgets every node shares (Redis) cannot be reached; a
    login is neither counted nor kept, so none is let in (the board itself keeps running)."""
    log.warning("login refused from %s: Redis, where sessions and login budgets are kept, is unreachable",
                client_ip(request))
    refused = page(503, "login.error.shared_down")
    refused.headers["Retry-After"] = retry_after_header(SHARED_DOWN_RETRY_S)
    return refused


async def logout(request: Request) -> Response:
    auth = parts(request).auth
    principal = principal_of(request)
    response = RedirectResponse(base(request) + "/login", status_code=303)
    if principal is None or principal.session_id is None:
        auth.clear_session_cookie(response)
        return response
    await require_csrf(request, principal)
    await auth.sessions.finish(principal.session_id)  # other nodes close its screens on their next sweep
    parts(request).hub.close_session(principal.session_id)
    log.info("logout: %s", loggable(principal.name))
    auth.clear_session_cookie(response)
    return response


async def set_my_ext(request: Request) -> Response:
    """POST /api/me/ext {"ext"}: the extension a supervisor's listen calls ring."""
    principal = supervisor(request)
    if not isinstance(principal, Principal):
        return principal
    auth = parts(request).auth
    lang = language(request)
    if not json_request(request):
        return error_response(415, "UNSUPPORTED_MEDIA_TYPE", lang)
    try:
        await require_csrf(request, principal, form=False)
    except CsrfError:
        return error_response(403, "CSRF", lang)
    try:
        body: Any = await request.json()
    except ValueError:
        body = None
    ext = valid_ext(body.get("ext")) if isinstance(body, dict) else None
    if ext is None:
        return error_response(400, "BAD_REQUEST", lang)
    if principal.session_id is None:
        auth.demo_ext = ext  # mode "none": one demo principal for the whole process
    else:
        session = await auth.sessions.fetch(principal.session_id)
        if session is None:
            return error_response(401, "UNAUTHORIZED", lang)
        session.ext = ext
        await auth.sessions.save(session)
    return JSONResponse({"ok": True, "ext": ext})
