"""The JSON and plain-text API: the state, health, readiness and Prometheus figures."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from wallboard.principal import Principal
from wallboard.web.context import parts, principal_of
from wallboard.web.guards import error_response, language, supervisor


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
    health = parts(request).engine.health()
    if not health.ready:
        return JSONResponse({"ready": False, "reason": health.reason}, status_code=503)
    return JSONResponse({"ready": True, "webhooks": health.webhooks})


async def metrics(request: Request) -> Response:
    found = parts(request)
    if not found.settings.server.metrics_public:
        principal = supervisor(request)
        if not isinstance(principal, Principal):
            return principal
    return Response(found.metrics.render(), media_type="text/plain; version=0.0.4")
