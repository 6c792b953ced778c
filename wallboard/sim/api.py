"""The vendor's routes under /v1, as pbx-api-reference.md and SPEC section 9 describe them."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wallboard.sim import views
from wallboard.sim.cdrs import DIRECTION_CODES, Cdr, CdrFilter
from wallboard.sim.center import Center
from wallboard.sim.hooks import EVENTS
from wallboard.sim.runtime import Runtime
from wallboard.sim.world import ActionError

MAX_RANGE_SECONDS = 24 * 3600
SCROLL_BATCH = 100
PAGE_LIMIT = 10
Handler = Callable[[Request], Awaitable[Response]]
TenantHandler = Callable[[Request, Center], Awaitable[Response]]


def json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def fail(error: str, message: str | None = None, status: int = 400) -> Response:
    body = {"status": "fail", "error": error}
    if message is not None:
        body["message"] = message
    return json(body, status)


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


async def _body(request: Request) -> dict[str, Any]:
    with contextlib.suppress(orjson.JSONDecodeError):
        data = orjson.loads(await request.body() or b"{}")
        if isinstance(data, dict):
            return data
    return {}


class InvalidParam(ValueError):
    pass


def _int(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParam(f"{name} must be a number") from None
    if value < 0:
        raise InvalidParam(f"{name} must not be negative")
    return value


def disabled() -> Response:
    """A disabled tenant (PUT /v1/tenant/{id} with enable false): its key, logins and tokens
    are refused like a wrong key, with a code that says why."""
    return fail("TENANT_DISABLED", "tenant is disabled", 401)


def build_routes(rt: Runtime) -> list[Route]:
    def guarded(handler: TenantHandler) -> Handler:
        """The bearer names the tenant: a token sees its own tenant and nothing else."""

        async def endpoint(request: Request) -> Response:
            center = rt.by_token(_bearer(request))
            if center is None:
                return fail("UNAUTHORIZED", "invalid or expired token", 401)
            if not center.enabled:
                return disabled()
            center.sync()
            return await handler(request, center)

        return endpoint

    def secret(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            if _bearer(request) != rt.secret_token:
                return fail("UNAUTHORIZED", "invalid or expired token", 401)
            return await handler(request)

        return endpoint

    # -- authentication ------------------------------------------------------------------

    async def login(request: Request) -> Response:
        body = await _body(request)
        found = rt.by_login(str(body.get("username") or ""))
        if found is None or body.get("password") != found[1].password:
            return fail("INVALID_CREDENTIALS", "wrong username or password", 401)
        center, account = found
        if not center.enabled:
            return disabled()
        return json(
            {
                "data": {
                    "user_uuid": account.user_uuid,
                    "domain_uuid": center.world.domain_id,
                    "username": account.username.split("@")[0],
                    "api_key": center.api_key,
                    "user_enabled": "true",
                    "level": account.level,
                }
            }
        )

    async def token(request: Request) -> Response:
        center = rt.by_api_key(str((await _body(request)).get("api_key") or ""))
        if center is None:
            return fail("INVALID_CREDENTIALS", "invalid api_key", 401)
        if not center.enabled:
            return disabled()
        value, expired = rt.tokens.issue(center.id, center.faults.token_lifetime)
        return json({"data": {"expired": expired, "token": value, "user_id": center.world.domain_id}})

    # -- event hooks ---------------------------------------------------------------------

    async def list_events(request: Request, center: Center) -> Response:
        rows = [
            {
                "event_domain_uuid": r.event_domain_uuid,
                "domain_uuid": center.world.domain_id,
                "domain_name": center.world.domain,
                "event_name": r.event_name,
                "callback_url": r.callback_url,
                "callback_apikey": r.callback_apikey,
            }
            for r in center.registry.items
        ]
        return json({"data": rows})

    async def create_event(request: Request, center: Center) -> Response:
        body = await _body(request)
        url, event = body.get("callback_url"), body.get("event")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return fail("INVALID_PARAMS", "callback_url is required")
        if event not in EVENTS:
            return fail("INVALID_EVENT", f"unknown event {event!r}")
        center.registry.add(str(event), url, str(body.get("callback_apikey") or ""))
        return json({"created": True})

    async def delete_event(request: Request, center: Center) -> Response:
        if not center.registry.remove(request.path_params["event_id"]):
            return fail("EVENT_NOT_FOUND", "no such event", 404)
        return json({"deleted": True})

    # -- CDRs ----------------------------------------------------------------------------

    def cdr_filters(request: Request) -> list[CdrFilter]:
        q = request.query_params
        filters: list[CdrFilter] = []

        def moment(name: str) -> float | None:
            raw = q.get(name)
            if not raw:
                return None
            try:
                return rt.local.parse_loose(raw)
            except ValueError:
                raise InvalidParam("invalid date format") from None

        bounds = (("start_date", "started", 1), ("end_date", "started", -1),
                  ("start_date_ended", "ended", 1), ("end_date_ended", "ended", -1))  # fmt: skip
        for name, attr, sign in bounds:
            at = moment(name)
            if at is not None:
                filters.append(_bound(attr, sign, at))
        duration, min_duration = _int(request, "duration"), _int(request, "min_duration")
        if duration is not None:
            filters.append(lambda c: c.duration == duration)
        if min_duration is not None:
            filters.append(lambda c: c.duration > min_duration)
        if ext := q.get("extension"):
            filters.append(lambda c: c.extension == ext)
        if recording := q.get("recordingfile"):
            filters.append(lambda c: bool(c.recording_url) and recording in c.recording_url)
        if status := q.get("status"):
            filters.append(lambda c: c.status == status.upper())
        if phone := q.get("phone"):
            filters.append(lambda c: phone in c.from_number or phone in c.to_number)
        if direction := q.get("direction"):
            code = DIRECTION_CODES.get(direction.lower())
            if code is None and not direction.isdigit():
                raise InvalidParam("direction must be inbound, outbound or local")
            wanted = code if code is not None else int(direction)
            filters.append(lambda c: c.direction == wanted)
        return filters

    async def list_cdrs(request: Request, center: Center) -> Response:
        q = request.query_params
        try:
            limit, page = _int(request, "limit"), _int(request, "page")
            offset = _int(request, "offset")
            scroll_id = q.get("scroll_id")
            if scroll_id:
                batch = center.cdrs.next_scroll(scroll_id, limit)
                if batch is None:
                    return fail("INVALID_SCROLL_ID", "scroll_id is unknown or expired")
                return json({"data": _rows(batch), "scroll_id": scroll_id})
            matches = center.cdrs.search(cdr_filters(request))
        except InvalidParam as error:
            text = str(error)
            if text == "invalid date format":
                return json({"error": text}, 400)
            return fail("INVALID_PARAMS", text)
        if limit is None and page is None and offset is None:
            first, new_id = center.cdrs.open_scroll(matches, SCROLL_BATCH)
            return json({"data": _rows(first), "scroll_id": new_id})
        size = limit or PAGE_LIMIT
        start = offset if offset is not None else (max(page or 1, 1) - 1) * size
        return json(
            {
                "data": _rows(matches[start : start + size]),
                "limit": size,
                "page": start // size + 1,
                "total": len(matches),
            }
        )

    async def get_cdr(request: Request, center: Center) -> Response:
        cdr = center.cdrs.get(request.path_params["cdr_id"])
        if cdr is None:
            return fail("CDR_NOT_FOUND", "cdr not found", 404)
        return json(cdr.to_json())

    # -- calls ---------------------------------------------------------------------------

    async def click2call(request: Request, center: Center, *, wait: bool) -> Response:
        q = request.query_params
        ext, phone = q.get("ext", ""), q.get("phone", "")
        if not ext or not phone:
            return fail("INVALID_PARAMS", "ext and phone are required")
        auto = q.get("auto_answer", "").lower() in ("1", "true", "yes")
        try:
            call_id = center.traffic.click2call(ext, phone, q.get("hotline", ""), auto)
        except ActionError as error:
            return fail(error.code, error.message, error.status)
        pickup = center.wait_pickup(call_id) if wait else None
        center.flush()
        if pickup is not None:
            # Answers once the extension picks up or hangs up (a few sim seconds at most).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(rt.clock.real_seconds(10.0) + 1.0):
                    await pickup
        return json({"status": "success", "call_id": call_id})

    async def click2call_sync(request: Request, center: Center) -> Response:
        return await click2call(request, center, wait=True)

    async def click2call_async(request: Request, center: Center) -> Response:
        return await click2call(request, center, wait=False)

    async def list_calls(request: Request, center: Center) -> Response:
        rows = views.call_rows(center.world)
        return json({"data": rows, "total": len(rows)})

    async def call_action(request: Request, center: Center) -> Response:
        action, call_id = request.path_params["action"], request.path_params["call_id"]
        ext = str((await _body(request)).get("ext") or "")
        if not ext:
            return fail("INVALID_PARAMS", "ext is required")
        try:
            if action == "transfer":
                center.world.transfer(call_id, ext)
            else:
                center.world.spy(call_id, ext)
        except ActionError as error:
            return fail(error.code, error.message, error.status)
        center.flush()
        return json({"status": "success", "call_id": call_id, "ext": ext})

    # -- reports and monitor -------------------------------------------------------------

    def date_range(request: Request) -> tuple[float, float] | Response:
        try:
            start = rt.local.parse(request.query_params.get("start_date", ""))
            end = rt.local.parse(request.query_params.get("end_date", ""))
        except ValueError:
            return json({"error": "invalid date format"}, 400)
        if start >= end:
            return json({"error": "start_date must be after end_date"}, 400)  # sic
        if end - start > MAX_RANGE_SECONDS:
            return json({"error": "date range must be in 24 hours"}, 400)
        return start, end

    async def report_call_id(request: Request, center: Center) -> Response:
        span = date_range(request)
        if isinstance(span, Response):
            return span
        rows = [{"call_id": c.id, "sip_call_id": c.sip_call_id} for c in center.cdrs.between(*span)]
        return json({"data": rows, "total": len(rows)})

    async def report_call_status(request: Request, center: Center) -> Response:
        span = date_range(request)
        if isinstance(span, Response):
            return span
        counts = center.cdrs.counts(*span)
        # Like the vendor's GROUP BY, a status with no call is left out.
        rows = [{"count": n, "status": s} for s, n in counts.items() if n]
        return json({"data": rows, "total": sum(counts.values())})

    async def monitor_agent(request: Request, center: Center) -> Response:
        return Response(center.monitor_body(), media_type="application/json")

    # -- tenants -------------------------------------------------------------------------

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def create_tenant(request: Request) -> Response:
        tenant_id = str((await _body(request)).get("tenant_id") or "")
        if not tenant_id:
            return fail("INVALID_PARAMS", "tenant_id is required")
        center = rt.create_tenant(tenant_id)  # a live one: its own agents, calls and key
        if center is None:
            return json({"created": False, "error": "TENANT_EXISTS"}, 409)
        data = {**center.tenant.describe(base_url(request)), "user": center.tenant.admin}
        return json({"created": True, "data": data})

    def found(request: Request) -> Center | None:
        tenant = rt.tenants.find(request.path_params["tenant_id"])
        return None if tenant is None else rt.center(tenant.tenant_id)

    async def get_tenant(request: Request) -> Response:
        center = found(request)
        if center is None:
            return fail("TENANT_NOT_FOUND", "tenant not found", 404)
        return json(center.tenant.describe(base_url(request)))

    async def update_tenant(request: Request) -> Response:
        center = found(request)
        if center is None:
            return fail("TENANT_NOT_FOUND", "tenant not found", 404)
        enable = (await _body(request)).get("enable")
        if not isinstance(enable, bool):
            return fail("INVALID_PARAMS", "enable must be true or false")
        center.sync()
        center.tenant.enabled = enable
        return json({"message": "update successfully"})

    async def create_extension(request: Request) -> Response:
        center = found(request)
        if center is None:
            return fail("TENANT_NOT_FOUND", "tenant not found", 404)
        body = await _body(request)
        ext, pwd = str(body.get("ext") or ""), str(body.get("pwd") or "")
        if not ext or not pwd:
            return fail("INVALID_PARAMS", "ext and pwd are required")
        if not ext.isdigit():
            return fail("INVALID_PARAMS", "ext must be digits")
        if ext in center.world.agents:
            return json({"created": False, "error": "EXTENSION_EXISTS"}, 409)
        center.sync()
        center.tenant.extensions[ext] = {"enabled": "true", "ext": ext, "pwd": pwd}
        center.traffic.add_extension(ext)  # not logged in until a phone registers (or its shift starts)
        center.flush()
        return json({"created": True, "data": center.tenant.extensions[ext]})

    async def get_extension(request: Request) -> Response:
        center = found(request)
        ext = request.path_params["ext"]
        if center is None or ext not in center.world.agents:
            return fail("EXTENSION_NOT_FOUND", "extension not found", 404)
        made = center.tenant.extensions.get(ext) or {"ext": ext, "pwd": _password(center, ext), "enabled": "true"}
        return json({"ext": made["ext"], "pwd": made["pwd"], "enabled": made["enabled"]})

    actions = "{action:str}"
    return [
        Route("/v1/auth", login, methods=["POST"]),
        Route("/v1/auth/token", token, methods=["POST"]),
        Route("/v1/event", guarded(list_events), methods=["GET"]),
        Route("/v1/event", guarded(create_event), methods=["POST"]),
        Route("/v1/event/{event_id}", guarded(delete_event), methods=["DELETE"]),
        Route("/v1/cdr", guarded(list_cdrs), methods=["GET"]),
        Route("/v1/cdr/{cdr_id:path}", guarded(get_cdr), methods=["GET"]),
        Route("/v1/click2call", guarded(click2call_sync), methods=["GET"]),
        Route("/v1/click2call/async", guarded(click2call_async), methods=["GET"]),
        Route("/v1/call", guarded(list_calls), methods=["GET"]),
        Route(f"/v1/call/{{call_id}}/{actions}", guarded(_only_actions(call_action)), methods=["POST"]),
        Route("/v1/report/call_id", guarded(report_call_id), methods=["GET"]),
        Route("/v1/report/call_status", guarded(report_call_status), methods=["GET"]),
        Route("/v1/monitor/agent", guarded(monitor_agent), methods=["GET"]),
        Route("/v1/tenant", secret(create_tenant), methods=["POST"]),
        Route("/v1/tenant/{tenant_id}", secret(get_tenant), methods=["GET"]),
        Route("/v1/tenant/{tenant_id}", secret(update_tenant), methods=["PUT"]),
        Route("/v1/tenant/{tenant_id}/extension", secret(create_extension), methods=["POST"]),
        Route("/v1/tenant/{tenant_id}/extension/extension/{ext}", secret(get_extension), methods=["GET"]),
        Route("/v1/tenant/{tenant_id}/extension/{ext}", secret(get_extension), methods=["GET"]),
    ]


def _only_actions(handler: TenantHandler) -> TenantHandler:
    async def endpoint(request: Request, center: Center) -> Response:
        if request.path_params["action"] not in ("transfer", "listen", "whisper", "barge"):
            return fail("NOT_FOUND", "unknown action", 404)
        return await handler(request, center)

    return endpoint


def _password(center: Center, ext: str) -> str:
    """The SIP password of an extension the simulator made itself: stable, never stored."""
    return hashlib.sha256(f"{center.tenant.uuid}:{ext}".encode()).hexdigest()[:12]


def _bound(attr: str, sign: int, at: float) -> CdrFilter:
    """sign 1: on or after `at`; sign -1: on or before. Whole seconds, as the strings show."""
    return lambda c: sign * math.floor(getattr(c, attr)) >= sign * at


def _rows(cdrs: list[Cdr]) -> list[dict[str, Any]]:
    return [c.to_json() for c in cdrs]
