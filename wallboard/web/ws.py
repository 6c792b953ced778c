"""`GET /ws`: a screen's WebSocket (SPEC section 6). The Origin is checked before anything
else; the principal decides the audience; the hub does the rest."""

from __future__ import annotations

import logging

from starlette.websockets import WebSocket

from wallboard.security import origin_allowed
from wallboard.web.context import parts, principal_of

log = logging.getLogger("wallboard.ws")

CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_UNAUTHENTICATED = 4401


async def ws_endpoint(ws: WebSocket) -> None:
    found = parts(ws)
    origin = ws.headers.get("origin")
    if origin is not None and not origin_allowed(origin, found.settings):
        log.info("websocket refused: origin %s not allowed", origin[:80])
        await ws.close(code=CLOSE_FORBIDDEN_ORIGIN)
        return
    principal = principal_of(ws)
    await ws.accept()
    if principal is None:
        await ws.close(code=CLOSE_UNAUTHENTICATED)
        return
    async with found.hub.subscribe(ws, kind=principal.role, audience=principal.audience,
                                   session_id=principal.session_id) as screen:
        await found.hub.serve(screen)
