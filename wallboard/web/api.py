"""The JSON and plain-text API: the state, health, readiness and Prometheus figures."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from wallboard.principal import Principal
from wallboard.web.context import parts, principal_of, site
from wallboard.web.guards import error_response, language, provider_token_ok, supervisor


async def api_state(request: Request) -> Response:
    """GET /api/state: the whole state as the principal's screens see it (SPEC section 5)."""
    principal = principal_of(request)
    if principal is None:
        return error_response(401, "UNAUTHORIZED", language(request))
    return Response(orjson.dumps(parts(request).engine.snapshot(principal.audience)),
                    media_type="application/json")


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    """Alone: 503 until the first poll succeeded and while the PBX does not answer. With
    [[tenants]] the node is ready once started (one tenant's PBX must not take every tenant
    out of the load balancer); each tenant's readiness is in the body."""
    found = site(request)
    about = {"node": found.node_id, "role": found.role()}
    if not found.multi:
        health = next(iter(found.tenants.values())).engine.health()
        if not health.ready:
            return JSONResponse({"ready": False, "reason": health.reason, **about}, status_code=503)
        return JSONResponse({"ready": True, "webhooks": health.webhooks, **about})
    tenants = {}
    for tenant_id, tenant in found.tenants.items():
        health = tenant.engine.health()
        tenants[tenant_id] = {"ready": health.ready, "reason": health.reason or None}
    return JSONResponse({"ready": True, "tenants": tenants, **about})


async def metrics(request: Request) -> Response:
    found = site(request)
    if not found.settings.server.metrics_public and not found.multi:
        principal = supervisor(request)
        if not isinstance(principal, Principal):
            return principal
    elif not found.settings.server.metrics_public and not provider_token_ok(request):
        return PlainTextResponse("Forbidden", status_code=403)
    return Response(found.metrics.render(), media_type="text/plain; version=0.0.4")
