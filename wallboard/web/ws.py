"""`GET /ws`: a screen's WebSocket (SPEC section 6). The Origin is checked before anything
else; the principal decides the audience; the hub does the rest."""

from __future__ import annotations

import logging
import re

import orjson
from starlette.websockets import WebSocket

from wallboard.hub import Resume
from wallboard.security import origin_allowed
from wallboard.web.context import parts, principal_of

log = logging.getLogger("wallboard.ws")

CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_UNAUTHENTICATED = 4401
EPOCH = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


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
                                   session_id=principal.session_id, resume=_resume(ws)) as screen:
        await found.hub.serve(screen)


def _resume(ws: WebSocket) -> Resume | None:
    """`?epoch=E&seq=N`: a screen coming back. It is sent the patches after N when the bus
    still holds every one of them; otherwise (None) a snapshot as usual."""
    epoch, seq = ws.query_params.get("epoch", ""), ws.query_params.get("seq", "")
    if not EPOCH.match(epoch) or not seq.isdigit() or len(seq) > 18:
        return None
    engine = parts(ws).engine
    engine.flush()  # what this turn changed is on the bus before we look
    patches = engine.bus.since(epoch, int(seq))
    if patches is None:
        return None
    return Resume(int(seq), patches, orjson.dumps(engine.heartbeat()).decode())
