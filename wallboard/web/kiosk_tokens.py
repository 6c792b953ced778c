"""Kiosk tokens, managed by supervisors on the board (kiosk_tokens.py keeps them). Each
route is supervisors' only (401/403); the changes are JSON only (415), CSRF-checked
(403, the header), rate-limited with the actions (429) and audited (action
"kiosk_token_create" / "kiosk_token_revoke").

    GET  /api/kiosk-tokens               {"tokens": [{id, name, created_at, created_by, last_seen_at,
                                          last_seen_ip, revoked_at, revoked_by}]}
    POST /api/kiosk-tokens               {"name"} -> {"token", "url", ...the row}: the token is shown once
    POST /api/kiosk-tokens/{id}/revoke   -> {"ok": true, "closed": N}: the TV's sockets are closed at once
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from wallboard.kiosk_tokens import NAME_MAX, TenantTokens
from wallboard.principal import Principal
from wallboard.storage import StorageUnavailable
from wallboard.web.context import parts
from wallboard.web.guards import client_ip, error_response, json_change, language, supervisor

CLOSE_REVOKED = 4401  # the TV keeps trying (main.js): a token given back works again at once


def screen_id(token_id: int) -> str:
    """What a TV's screen is known by in the hub, so that a revoke finds its sockets."""
    return f"kiosk-token:{token_id}"


def _store(request: Request) -> TenantTokens | None:
    return parts(request).auth.stored_tokens


async def _change(request: Request) -> tuple[Principal, TenantTokens, Any] | Response:
    who = supervisor(request)
    if isinstance(who, Response):
        return who
    lang = language(request)
    store = _store(request)
    if store is None:
        return error_response(404, "BAD_REQUEST", lang)
    checked = await json_change(request, who)
    if isinstance(checked, Response):
        return checked
    return who, store, checked.value


async def list_tokens(request: Request) -> Response:
    who = supervisor(request)
    if isinstance(who, Response):
        return who
    store = _store(request)
    try:
        return JSONResponse({"tokens": await store.rows() if store is not None else []})
    except StorageUnavailable:
        return error_response(503, "STORAGE", language(request))


async def _audited(request: Request, who: Principal, action: str) -> int | None:
    """The audit row of a change, written before it; None when it cannot be (then no change)."""
    try:
        return await parts(request).audit.begin(username=who.name, role=who.role, ip=client_ip(request),
                                                action=action, tenant=parts(request).tenant)
    except StorageUnavailable:
        return None


async def create_token(request: Request) -> Response:
    checked = await _change(request)
    if isinstance(checked, Response):
        return checked
    who, store, body = checked
    name = body.get("name") if isinstance(body, dict) else None
    name = " ".join(name.split()) if isinstance(name, str) else ""
    if not name or len(name) > NAME_MAX or any(ord(ch) < 0x20 for ch in name):
        return error_response(400, "BAD_REQUEST", language(request))
    audit = parts(request).audit
    row_id = await _audited(request, who, "kiosk_token_create")
    if row_id is None:
        return error_response(503, "AUDIT_UNAVAILABLE", language(request))
    try:
        token, row = await store.create(name, who.name)
    except StorageUnavailable as e:
        await audit.finish(row_id, "STORAGE", str(e)[:200])
        return error_response(503, "STORAGE", language(request))
    await audit.finish(row_id, "ok")
    base = parts(request).base
    return JSONResponse({**row, "token": token, "url": f"{base}/kiosk?token={quote(token, safe='')}"})


async def revoke_token(request: Request) -> Response:
    checked = await _change(request)
    if isinstance(checked, Response):
        return checked
    who, store, _ = checked
    try:
        token_id = int(request.path_params["token_id"])
    except ValueError:
        return error_response(404, "BAD_REQUEST", language(request))
    audit = parts(request).audit
    row_id = await _audited(request, who, "kiosk_token_revoke")
    if row_id is None:
        return error_response(503, "AUDIT_UNAVAILABLE", language(request))
    try:
        revoked = await store.revoke(token_id, who.name)  # refused on this node from now on in any case
    except StorageUnavailable as e:
        await audit.finish(row_id, "STORAGE", str(e)[:200])
        return error_response(503, "STORAGE", language(request))
    closed = parts(request).hub.close_if(lambda s: s.session_id == screen_id(token_id), CLOSE_REVOKED,
                                         "kiosk token revoked")
    await audit.finish(row_id, "ok" if revoked else "NOT_FOUND")
    if not revoked:
        return error_response(404, "BAD_REQUEST", language(request))
    return JSONResponse({"ok": True, "closed": closed})
