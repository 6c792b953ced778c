"""`POST /hooks/pbx/{secret}`: the PBX's webhooks (SPEC section 7).

The body is read within its size limit, parsed whole (pbx/events.py) and only then
handed to the engine, so a bad event is refused (400/413/422) and never half-applied;
the receiver never answers 500. In cluster mode a good event is added to the tenant's
intake stream in Redis and answered 200 only once Redis has it (503 while Redis is
unreachable: the PBX sends it again); the tenant's leader applies it.
"""

from __future__ import annotations

import hmac
import logging
import time

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from wallboard.cluster.redis_bus import DOWN
from wallboard.pbx.events import BadEvent, parse_event
from wallboard.web.context import parts

log = logging.getLogger("wallboard.webhooks")

MAX_BODY = 64 * 1024


async def receive(request: Request) -> Response:
    found = parts(request)
    engine, count = found.engine, found.metrics.count_webhook
    given = request.path_params["secret"].encode()
    if not hmac.compare_digest(given, engine.webhook_secret.encode()):
        count("not_found")
        return JSONResponse({"error": "not found"}, status_code=404)
    received = int(time.time() * 1000)
    try:
        raw = await _read_limited(request)
        event = parse_event(raw, engine.time, received)
    except BadEvent as e:
        count("rejected")
        engine.count_webhook("rejected")
        log.info("webhook refused (%d): %s", e.status, e)
        return JSONResponse({"error": str(e)}, status_code=e.status)
    if found.cluster is not None:  # the leader of the tenant applies it, in order, from Redis
        try:
            await found.cluster.intake.accept(raw, received)
        except DOWN as e:
            count("failed")
            log.warning("webhook for call %s not taken: Redis is unreachable (%s)", event.call_id, e)
            return JSONResponse({"error": "not taken now, try again"}, status_code=503)
        count("accepted")
        return JSONResponse({"ok": True})
    try:
        engine.submit(event)
    except Exception:  # the state refused it; say so, keep serving
        count("failed")
        engine.count_webhook("failed")
        log.exception("webhook %s for call %s could not be applied", event.state, event.call_id)
        return JSONResponse({"error": "event could not be applied"}, status_code=422)
    count("accepted")
    return JSONResponse({"ok": True})


async def _read_limited(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise BadEvent(413, f"body is larger than {MAX_BODY // 1024} KiB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise BadEvent(413, f"body is larger than {MAX_BODY // 1024} KiB")
        chunks.append(chunk)
    return b"".join(chunks)
