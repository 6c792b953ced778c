"""Supervisor actions on calls (listen, whisper, barge, transfer), click-to-call, and
the audit log's API and page.

Every attempt by a signed-in person is audited, allowed or refused. The order
of the checks is fixed: who (401), what (404), role (403), CSRF (403), rate
(429), input (400), then an audit row, the PBX, and the row's result.
Anonymous requests are refused without a row, so that nobody can fill the
audit database without an account.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from wallboard import pages
from wallboard.audit import AuditLog
from wallboard.auth import Principal, client_ip, error_message, principal_of, valid_ext
from wallboard.i18n import pick_language, t
from wallboard.pbx.errors import PbxError
from wallboard.ratelimit import RateLimiter
from wallboard.security import CsrfError, require_csrf

log = logging.getLogger("wallboard.actions")

CALL_ACTIONS = frozenset({"listen", "whisper", "barge", "transfer"})
MONITOR_ACTIONS = frozenset({"listen", "whisper", "barge"})
# Call ids go into the PBX's URL path: letters, digits and a few separators only.
CALL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
PHONE_PATTERN = re.compile(r"^\+?[0-9]{3,20}$")
AUDIT_LIMIT_MAX = 1000


class Refusal(Exception):
    """An attempt stopped before the PBX: its status and error code."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code


class _Attempt:
    """One action attempt: the checks every action shares, and its audit row."""

    def __init__(self, request: Request, principal: Principal, action: str,
                 limiter: RateLimiter) -> None:
        self.request = request
        self.principal = principal
        self.action = action
        self.limiter = limiter
        self.audit: AuditLog = request.app.state.audit
        settings = request.app.state.settings
        self.lang = pick_language(request, settings.display.language)
        self.per_minute: int = settings.auth.actions_per_minute
        self.fields: dict[str, Any] = {}

    def _row(self) -> dict[str, Any]:
        return {"username": self.principal.name, "role": self.principal.role,
                "ip": client_ip(self.request), "action": self.action, **self.fields}

    async def check(self) -> Any:
        """Role, CSRF and rate limit; returns the JSON body (None when not JSON)."""
        if not self.principal.is_supervisor:
            raise Refusal(403, "FORBIDDEN")
        try:
            await require_csrf(self.request, self.principal)
        except CsrfError:
            raise Refusal(403, "CSRF") from None
        if not self.limiter.hit(self.principal.name, self.per_minute):
            raise Refusal(429, "RATE_LIMITED")
        try:
            return await self.request.json()
        except ValueError:
            return None

    async def refused(self, refusal: Refusal) -> JSONResponse:
        await self.audit.begin(**self._row(), allowed=False, result=refusal.code)
        log.info("%s by %s refused: %s", self.action, self.principal.name, refusal.code)
        ext = self.fields.get("target_ext")
        return JSONResponse(
            {"ok": False, "error": refusal.code,
             "message": error_message(self.lang, refusal.code, ext)},
            status_code=refusal.status,
        )

    async def run(self, call: Callable[[], Awaitable[object]]) -> tuple[bool, JSONResponse]:
        """Audit row, then the PBX call, then the row's result; the JSON answer."""
        row_id = await self.audit.begin(**self._row())
        ext = self.fields.get("target_ext")
        try:
            await call()
        except PbxError as error:
            await self.audit.finish(row_id, error.code, error.message)
            log.info("%s by %s failed: %s", self.action, self.principal.name, error.code)
            return False, JSONResponse({"ok": False, "error": error.code,
                                        "message": error_message(self.lang, error.code, ext)})
        except Exception as error:
            await self.audit.finish(row_id, "INTERNAL", type(error).__name__)
            log.exception("%s by %s failed unexpectedly", self.action, self.principal.name)
            return False, JSONResponse({"ok": False, "error": "UNKNOWN",
                                        "message": error_message(self.lang, "UNKNOWN", ext)})
        await self.audit.finish(row_id, "ok")
        log.info("%s by %s ok", self.action, self.principal.name)
        message = t(self.lang, f"action.ok.{self.action}", ext=ext or "")
        return True, JSONResponse({"ok": True, "message": message})


def _target_ext(raw: object, default: str | None) -> str:
    """The extension from the body, else `default`; Refusal when neither will do."""
    if raw in (None, ""):
        if default is None:
            raise Refusal(400, "NO_EXT")
        return default
    ext = valid_ext(raw)
    if ext is None:
        raise Refusal(400, "BAD_REQUEST")
    return ext


def _unauthorized(request: Request) -> JSONResponse:
    lang = pick_language(request, request.app.state.settings.display.language)
    return JSONResponse(
        {"ok": False, "error": "UNAUTHORIZED", "message": error_message(lang, "UNAUTHORIZED")},
        status_code=401,
    )


def routes() -> list[BaseRoute]:
    # One limiter per app: the routes of one create_app share it.
    limiter = RateLimiter(60.0)

    async def call_action(request: Request) -> Response:
        principal = principal_of(request)
        if principal is None:
            return _unauthorized(request)
        action = request.path_params["action"]
        if action not in CALL_ACTIONS:
            return PlainTextResponse("Not Found", status_code=404)
        call_id = request.path_params["call_id"]
        attempt = _Attempt(request, principal, action, limiter)
        valid_call = CALL_ID_PATTERN.match(call_id) is not None
        live = request.app.state.live
        agent = live.calls.get(call_id, {}).get("agent") if valid_call else None
        attempt.fields = {"call_id": call_id[:128], "agent_ext": agent}
        try:
            body = await attempt.check()
            if not valid_call or (body is not None and not isinstance(body, dict)):
                raise Refusal(400, "BAD_REQUEST")
            own = principal.ext if action in MONITOR_ACTIONS else None
            ext = _target_ext((body or {}).get("ext"), own)
        except Refusal as refusal:
            return await attempt.refused(refusal)
        attempt.fields["target_ext"] = ext
        pbx = request.app.state.pbx
        ok, response = await attempt.run(lambda: pbx.call_action(call_id, action, ext))
        if ok and action in MONITOR_ACTIONS:
            live.set_monitor(call_id, {"agent": agent, "mode": action, "by": principal.name,
                                       "ext": ext})
        return response

    async def click2call(request: Request) -> Response:
        principal = principal_of(request)
        if principal is None:
            return _unauthorized(request)
        attempt = _Attempt(request, principal, "call", limiter)
        try:
            body = await attempt.check()
            if not isinstance(body, dict):
                raise Refusal(400, "BAD_REQUEST")
            phone = body.get("phone")
            phone = phone.strip() if isinstance(phone, str) else ""
            if not PHONE_PATTERN.match(phone):
                raise Refusal(400, "BAD_REQUEST")
            attempt.fields["phone"] = phone
            ext = _target_ext(body.get("ext"), principal.ext)
        except Refusal as refusal:
            return await attempt.refused(refusal)
        attempt.fields["target_ext"] = ext
        # The async endpoint: the sync one holds the request until the phone is picked up.
        pbx = request.app.state.pbx
        _, response = await attempt.run(lambda: pbx.click2call(ext, phone, wait=False))
        return response

    return [
        Route("/api/calls/{call_id}/{action}", call_action, methods=["POST"]),
        Route("/api/click2call", click2call, methods=["POST"]),
        Route("/api/audit", audit_api, methods=["GET"]),
        Route("/audit", audit_page, methods=["GET"]),
    ]


def _filters(request: Request) -> dict[str, str]:
    return {name: request.query_params.get(name, "").strip() for name in ("date", "username")}


async def _audit_rows(request: Request, filters: dict[str, str]) -> list[dict[str, Any]] | None:
    """The rows for these filters; None when the date is not YYYY-MM-DD."""
    try:
        limit = int(request.query_params.get("limit", "200"))
    except ValueError:
        limit = 200
    audit: AuditLog = request.app.state.audit
    try:
        return await audit.query(date=filters["date"] or None,
                                 username=filters["username"] or None,
                                 limit=max(1, min(limit, AUDIT_LIMIT_MAX)))
    except ValueError:
        return None


async def audit_api(request: Request) -> Response:
    principal = principal_of(request)
    lang = pick_language(request, request.app.state.settings.display.language)
    if principal is None:
        return _unauthorized(request)
    if not principal.is_supervisor:
        return JSONResponse({"ok": False, "error": "FORBIDDEN",
                             "message": error_message(lang, "FORBIDDEN")}, status_code=403)
    rows = await _audit_rows(request, _filters(request))
    if rows is None:
        return JSONResponse({"ok": False, "error": "BAD_REQUEST",
                             "message": error_message(lang, "BAD_REQUEST")}, status_code=400)
    return JSONResponse({"ok": True, "rows": rows})


async def audit_page(request: Request) -> Response:
    principal = principal_of(request)
    lang = pick_language(request, request.app.state.settings.display.language)
    if principal is None:
        return RedirectResponse("/login?next=/audit", status_code=303)
    if not principal.is_supervisor:
        return PlainTextResponse(error_message(lang, "FORBIDDEN"), status_code=403)
    filters = _filters(request)
    rows = await _audit_rows(request, filters)
    if rows is None:
        return pages.render(request, "audit.html", {"rows": [], "filters": filters},
                            status_code=400)
    return pages.render(request, "audit.html", {"rows": rows, "filters": filters})
