"""Supervisor actions on calls (listen, whisper, barge, transfer) and click-to-call.

Every attempt by a signed-in person or a kiosk is audited, allowed or refused. The
order of the checks is fixed: who (401), what (404), the budgets of the person and of
the address (429, no row: nothing is written past them), the account as the PBX says
it is now when last asked long ago (401 ended, 503 not answered), role (403), media
type (415: a JSON route never reads a form), CSRF (403, the header only), rate (429),
input (400), then an audit row, the PBX, and the row's result. Anonymous requests are
refused without a row, so that nobody can fill the audit database without an account;
a kiosk or a viewer pressing on is held to its budgets, and its refusals fold into one
row (audit.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from wallboard.i18n import t
from wallboard.pbx.errors import PbxError
from wallboard.principal import Principal
from wallboard.ratelimit import retry_after_header
from wallboard.security import CsrfError, require_csrf
from wallboard.storage import StorageUnavailable
from wallboard.web.context import parts, principal_of
from wallboard.web.guards import client_ip, error_message, error_response, json_request, language, valid_ext

log = logging.getLogger("wallboard.actions")

CALL_ACTIONS = frozenset({"listen", "whisper", "barge", "transfer"})
MONITOR_ACTIONS = frozenset({"listen", "whisper", "barge"})
# Call ids go into the PBX's URL path: letters, digits and a few separators only.
CALL_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
PHONE_PATTERN = re.compile(r"^\+?[0-9]{3,20}$")


class Refusal(Exception):
    """An attempt stopped before the PBX: its status and error code."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code


class _Attempt:
    """One action attempt: the checks every action shares, and its audit row."""

    def __init__(self, request: Request, principal: Principal, action: str) -> None:
        self.request = request
        self.principal = principal
        self.action = action
        found = parts(request)
        self.limiter = found.action_limiter
        self.audit = found.audit
        self.lang = language(request)
        self.per_minute: int = found.settings.auth.actions_per_minute
        self.fields: dict[str, Any] = {}

    def _row(self) -> dict[str, Any]:
        return {"username": self.principal.name, "role": self.principal.role,
                "ip": client_ip(self.request), "action": self.action, "tenant": parts(self.request).tenant,
                **self.fields}

    async def check(self) -> Any:
        """The account now, role, media type, CSRF and rate limit; returns the JSON body
        (None when not JSON)."""
        try:
            fresh = await parts(self.request).keeper.fresh(self.principal)
        except PbxError:
            raise Refusal(503, "UNREACHABLE") from None
        if fresh is None:
            raise Refusal(401, "UNAUTHORIZED")
        self.principal = fresh
        if not self.principal.is_supervisor:
            raise Refusal(403, "FORBIDDEN")
        if not json_request(self.request):
            raise Refusal(415, "UNSUPPORTED_MEDIA_TYPE")
        try:
            await require_csrf(self.request, self.principal, form=False)
        except CsrfError:
            raise Refusal(403, "CSRF") from None
        if not await self.limiter.hit_async(self.principal.name, self.per_minute):
            raise Refusal(429, "RATE_LIMITED")
        try:
            return await self.request.json()
        except ValueError:
            return None

    async def refused(self, refusal: Refusal) -> JSONResponse:
        try:
            await self.audit.begin(**self._row(), allowed=False, result=refusal.code)
        except StorageUnavailable:  # nothing is done, so the refusal stands; the log says it
            log.warning("%s by %s refused (%s), not audited: the audit log cannot be written",
                        self.action, self.principal.name, refusal.code)
        log.info("%s by %s refused: %s", self.action, self.principal.name, refusal.code)
        ext = self.fields.get("target_ext")
        return JSONResponse(
            {"ok": False, "error": refusal.code,
             "message": error_message(self.lang, refusal.code, ext)},
            status_code=refusal.status,
        )

    async def run(self, call: Callable[[], Awaitable[object]]) -> tuple[bool, JSONResponse]:
        """Audit row, then the PBX call, then the row's result; the JSON answer. No row, no
        call: while the audit log cannot be written, 503 AUDIT_UNAVAILABLE and the PBX is not asked."""
        try:
            row_id = await self.audit.begin(**self._row())
        except StorageUnavailable:
            log.warning("%s by %s refused: the audit log cannot be written", self.action, self.principal.name)
            return False, error_response(503, "AUDIT_UNAVAILABLE", self.lang)
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
    return error_response(401, "UNAUTHORIZED", language(request))


async def _over_budget(request: Request, principal: Principal) -> JSONResponse | None:
    """429 with Retry-After, and nothing written, once the person or the address has used
    its budget of attempts (ratelimit.ACTION_BUDGETS; with cluster.redis_url, across nodes)."""
    wait = await parts(request).auth.action_budgets.attempt_async(f"{principal.role}:{principal.name}",
                                                                  client_ip(request))
    if not wait:
        return None
    response = error_response(429, "RATE_LIMITED", language(request))
    response.headers["Retry-After"] = retry_after_header(wait)
    return response


async def call_action(request: Request) -> Response:
    """POST /api/calls/{call_id}/{action}."""
    principal = principal_of(request)
    if principal is None:
        return _unauthorized(request)
    action = request.path_params["action"]
    if action not in CALL_ACTIONS:
        return PlainTextResponse("Not Found", status_code=404)
    if (over := await _over_budget(request, principal)) is not None:
        return over
    call_id = request.path_params["call_id"]
    attempt = _Attempt(request, principal, action)
    valid_call = CALL_ID_PATTERN.match(call_id) is not None
    engine = parts(request).engine
    call = engine.call(call_id) if valid_call else None
    agent = call.get("agent") if call else None
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
    pbx = parts(request).pbx
    ok, response = await attempt.run(lambda: pbx.call_action(call_id, action, ext))
    if ok and action in MONITOR_ACTIONS:
        engine.set_monitor(call_id, {"agent": agent, "mode": action, "by": principal.name, "ext": ext})
    return response


async def click2call(request: Request) -> Response:
    """POST /api/click2call {"phone", "ext"}."""
    principal = principal_of(request)
    if principal is None:
        return _unauthorized(request)
    if (over := await _over_budget(request, principal)) is not None:
        return over
    attempt = _Attempt(request, principal, "call")
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
    pbx = parts(request).pbx
    _, response = await attempt.run(lambda: pbx.click2call(ext, phone, wait=False))
    return response
