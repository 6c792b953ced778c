"""`GET /ws`: a screen's WebSocket (SPEC section 6). The Origin is checked before anything
else (a missing one is refused too, unless server.allow_missing_origin: browsers always
send it); the principal decides the audience; the hub does the rest.

Limits: at most server.max_sockets_per_session sockets open at once per session and per
kiosk token (with cluster.redis_url: across every node), closed with 4429 past that (the
open demo, auth.mode "none", has neither and no limit); attempts without a principal, at
most that many a minute per address (per node), refused at the handshake past that.
"""

from __future__ import annotations

import hashlib
import logging
import re

import orjson
from starlette.websockets import WebSocket

from wallboard.hub import Resume
from wallboard.principal import Principal
from wallboard.security import origin_allowed
from wallboard.views import view_of
from wallboard.web.context import parts, principal_of
from wallboard.web.guards import client_ip
from wallboard.web.kiosk_tokens import screen_id

log = logging.getLogger("wallboard.ws")

CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_MANY = 4429
EPOCH = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


async def ws_endpoint(ws: WebSocket) -> None:
    found = parts(ws)
    origin = ws.headers.get("origin")
    if origin is None and not found.settings.server.allow_missing_origin:
        log.info("websocket refused: no Origin header")
        await ws.close(code=CLOSE_FORBIDDEN_ORIGIN)
        return
    if origin is not None and not origin_allowed(origin, found.settings):
        log.info("websocket refused: origin %s not allowed", origin[:80])
        await ws.close(code=CLOSE_FORBIDDEN_ORIGIN)
        return
    principal = principal_of(ws)
    limit = found.settings.server.max_sockets_per_session
    auth = found.auth
    if principal is None:
        if not auth.anonymous_sockets.hit(client_ip(ws), limit):
            await ws.close(code=CLOSE_TOO_MANY)  # before accepting: a 403 at the handshake
            return
        await ws.accept()
        await ws.close(code=CLOSE_UNAUTHENTICATED)
        return
    key = socket_key(ws, principal)
    if key is not None and not await auth.sockets.acquire_async(key, limit):  # across nodes with Redis
        log.info("websocket refused: this %s already has %d open", principal.role, limit)
        await ws.accept()
        await ws.close(code=CLOSE_TOO_MANY)
        return
    try:
        await ws.accept()
        async with found.hub.subscribe(ws, kind=principal.role, audience=principal.audience,
                                       session_id=principal.session_id or _kiosk_screen(ws, principal),
                                       resume=await _resume(ws),
                                       view=view_of(ws.query_params)) as screen:  # ?team= / ?hotline=
            await found.hub.serve(screen)
    finally:
        if key is not None:
            await auth.sockets.release_async(key)


def _kiosk_screen(ws: WebSocket, principal: Principal) -> str | None:
    """A TV on a token made on the board: known to the hub by it (a revoke closes it), and seen."""
    if principal.role != "kiosk":
        return None
    auth = parts(ws).auth
    token = ws.query_params.get("token", "")
    token_id = auth.stored_token_id(token)
    if token_id is None or auth.stored_tokens is None:
        return None
    auth.stored_tokens.seen(token, client_ip(ws))
    return screen_id(token_id)


def socket_key(ws: WebSocket, principal: Principal) -> str | None:
    """What a socket counts against: its session, or its kiosk token (hashed: the table
    holds no token); None for the open demo's one principal."""
    if principal.session_id is not None:
        return "session:" + principal.session_id
    if principal.role == "kiosk":
        token = ws.query_params.get("token", "")
        return "kiosk:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return None


async def _resume(ws: WebSocket) -> Resume | None:
    """`?epoch=E&seq=N`: a screen coming back. It is sent the patches after N when the bus
    still holds every one of them (in cluster mode: this node's history, else the stream in
    Redis, on whichever node it comes back to); otherwise (None) a snapshot as usual."""
    epoch, seq = ws.query_params.get("epoch", ""), ws.query_params.get("seq", "")
    if not EPOCH.match(epoch) or not seq.isdigit() or len(seq) > 18:
        return None
    found = parts(ws)
    engine = found.engine
    if found.cluster is not None:
        patches = await found.cluster.since(epoch, int(seq))  # nothing awaited after it until subscribed
    else:
        engine.flush()  # what this turn changed is on the bus before we look
        patches = engine.bus.since(epoch, int(seq))
    if patches is None:
        return None
    return Resume(int(seq), patches, orjson.dumps(engine.heartbeat()).decode())
