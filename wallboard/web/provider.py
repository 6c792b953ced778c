"""The provider's view over every tenant: `/provider?token=T`, its `/provider/ws` and
`/provider/api/state` (SPEC section 10). Read-only, for `[provider] tokens` only; the rows
hold no phone number, agent or caller name, or call id (provider.py)."""

from __future__ import annotations

from urllib.parse import quote

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.websockets import WebSocket

from wallboard.audience import Audience
from wallboard.i18n import LOCALES, catalogue
from wallboard.security import origin_allowed
from wallboard.web.context import provider_view, site
from wallboard.web.guards import language, provider_token_ok
from wallboard.web.pages import render
from wallboard.web.ws import CLOSE_FORBIDDEN_ORIGIN, CLOSE_UNAUTHENTICATED


def _refused(request: Request) -> Response | None:
    if provider_view(request) is None:
        return PlainTextResponse("Not Found", status_code=404)
    if not provider_token_ok(request):
        return PlainTextResponse("Forbidden: a provider token is needed (?token=)", status_code=403)
    return None


async def provider_page(request: Request) -> Response:
    refused = _refused(request)
    if refused is not None:
        return refused
    lang = language(request)
    suffix = "?token=" + quote(request.query_params["token"], safe="")
    boot = {"lang": lang, "locale": LOCALES[lang], "ws_path": "/provider/ws" + suffix,
            "catalogue": dict(catalogue(lang))}
    return render(request, "provider.html", {"boot": boot, "layout": "provider"})


async def provider_state(request: Request) -> Response:
    refused = _refused(request)
    if refused is not None:
        return JSONResponse({"error": "provider token needed"}, status_code=refused.status_code)
    view = provider_view(request)
    assert view is not None
    return Response(orjson.dumps(view.board.snapshot()), media_type="application/json")


async def provider_ws(ws: WebSocket) -> None:
    found = site(ws)
    origin = ws.headers.get("origin")
    if origin is None or not origin_allowed(origin, found.settings):
        await ws.close(code=CLOSE_FORBIDDEN_ORIGIN)
        return
    await ws.accept()
    view = provider_view(ws)
    if view is None or not provider_token_ok(ws):
        await ws.close(code=CLOSE_UNAUTHENTICATED)
        return
    async with view.hub.subscribe(ws, kind="provider", audience=Audience.WHOLE, session_id=None) as screen:
        await view.hub.serve(screen)
