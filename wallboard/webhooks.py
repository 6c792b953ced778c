"""The PBX's webhooks: the receiver route, the event parser, and start-up registration.

The receiver checks and parses everything before the state is touched, so a bad
event is refused whole (400/413/422) and never half-applied; it never answers 500.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from wallboard.pbx.client import PbxClient
from wallboard.pbx.times import PbxTime
from wallboard.state import PHASES, CallEvent

log = logging.getLogger("wallboard.webhooks")

MAX_BODY = 64 * 1024


class BadEvent(ValueError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _text(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadEvent(400, f"field {key!r} must be a string")
    return str(value).strip()


def _int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        raise BadEvent(400, f"field {key!r} must be a number") from None


def parse_event(raw: bytes, clock: PbxTime, received: int) -> CallEvent:
    """A webhook body as a CallEvent, or BadEvent naming the problem."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadEvent(400, "body is not JSON") from None
    if not isinstance(body, dict):
        raise BadEvent(400, "body must be a JSON object")
    for key in ("state", "call_id"):
        if not isinstance(body.get(key), str) or not body[key].strip():
            raise BadEvent(400, f"field {key!r} is missing or not a string")
    state = body["state"].strip().lower()
    if state not in PHASES:
        raise BadEvent(422, f"unknown state {body['state'][:40]!r}; expected one of {sorted(PHASES)}")
    call_id = body["call_id"].strip()
    if len(call_id) > 200:
        raise BadEvent(400, "field 'call_id' is too long")
    direction = _text(body, "direction").lower()
    if direction not in ("inbound", "outbound", "local", ""):
        direction = {"1": "inbound", "2": "local", "3": "outbound"}.get(direction, "")
    happened = clock.parse(body.get("time"))
    return CallEvent(
        state=state, call_id=call_id, direction=direction,
        from_number=_text(body, "from_number"), to_number=_text(body, "to_number"),
        hotline=_text(body, "hotline"),
        at=happened if happened and happened <= received + 5000 else received,
        received=received, duration=_int(body, "duration"), billsec=_int(body, "billsec"),
        status=_text(body, "status").upper(), extension=_text(body, "extension"),
        time_started=clock.parse(body.get("time_started")),
        time_answered=clock.parse(body.get("time_answered")),
        time_ended=clock.parse(body.get("time_ended")),
    )


def receiver_route(secret: str, clock: PbxTime, apply: Callable[[CallEvent], None],
                   count: Callable[[str], None]) -> Route:
    """`POST /hooks/pbx/{secret}`; `apply` merges a good event, `count` records the outcome."""
    expected = secret.encode()

    async def receive(request: Request) -> Response:
        given = request.path_params["secret"].encode()
        if not hmac.compare_digest(given, expected):
            count("not_found")
            return JSONResponse({"error": "not found"}, status_code=404)
        try:
            raw = await _read_limited(request)
            event = parse_event(raw, clock, int(time.time() * 1000))
        except BadEvent as e:
            count("rejected")
            log.info("webhook refused (%d): %s", e.status, e)
            return JSONResponse({"error": str(e)}, status_code=e.status)
        try:
            apply(event)
        except Exception:  # the state refused it; say so, keep serving
            count("failed")
            log.exception("webhook %s for call %s could not be applied", event.state, event.call_id)
            return JSONResponse({"error": "event could not be applied"}, status_code=422)
        count("accepted")
        return JSONResponse({"ok": True})

    return Route("/hooks/pbx/{secret}", receive, methods=["POST"])


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


def load_secret(configured: str, state_dir: Path) -> str:
    """The configured secret, else one generated once and kept in the state dir."""
    if configured:
        return configured
    path = state_dir / "webhook_secret"
    try:
        existing = path.read_text().strip()
        if existing:
            return existing
    except FileNotFoundError:
        pass
    state_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(24)
    path.touch(mode=0o600)
    path.write_text(value)
    return value


def callback_url(public_url: str, secret: str) -> str:
    return f"{public_url.rstrip('/')}/hooks/pbx/{secret}"


async def register(pbx: PbxClient, url: str, secret: str, events: list[str]) -> dict[str, str]:
    """Make the PBX hold exactly one registration per event for our callback.

    Returns what was done per event ("kept", "created", "replaced"), so restarts
    never pile up duplicates and a stale api key is refreshed.
    """
    done: dict[str, str] = {}
    hooks = [h for h in await pbx.list_events() if h.callback_url == url]
    for event in events:
        mine = [h for h in hooks if h.event_name == event]
        good = [h for h in mine if h.callback_apikey == secret]
        keep = good[0] if good else None
        for hook in mine:
            if hook is not keep:
                await pbx.delete_event(hook.event_domain_uuid)
        if keep is None:
            await pbx.create_event(event, url, secret)
            done[event] = "replaced" if mine else "created"
        else:
            done[event] = "kept"
    for hook in hooks:
        if hook.event_name not in events:
            await pbx.delete_event(hook.event_domain_uuid)
    return done


async def unregister(pbx: PbxClient, url: str) -> int:
    hooks = [h for h in await pbx.list_events() if h.callback_url == url]
    for hook in hooks:
        await pbx.delete_event(hook.event_domain_uuid)
    return len(hooks)
