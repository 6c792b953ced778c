"""What a supervisor sets on the board: the levels of the figures and the messages to the
wall (board.py). Each route is supervisors' only (401/403), JSON only (415), CSRF-checked
(403, the header), rate-limited with the actions (429), and each change is written to the
audit log (action "threshold", "wall_message" or "wall_remove"; refusals after the
checks too).

    GET  /api/thresholds                 every scope's levels: {scope: {figure: {levels, own}}}
    POST /api/thresholds                 {"scope", "figure", "warn", "alarm"} or {"scope", "figure", "reset": true}
    POST /api/wall                       {"text", "team" (null: every screen), "minutes"}
    POST /api/wall/{id}/remove           take a message down before it expires
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from wallboard.board import Board, BoardError, check_levels, clean_text
from wallboard.board_store import BoardStoreError
from wallboard.principal import Principal
from wallboard.storage import StorageUnavailable
from wallboard.web.context import parts
from wallboard.web.guards import client_ip, error_response, json_change, language, supervisor

log = logging.getLogger("wallboard.board_api")


class _Refused(Exception):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status, self.code = status, code


async def _checked(request: Request) -> tuple[Principal, Board, Any] | Response:
    """The supervisor, the tenant's board and the JSON body, or the refusal."""
    who = supervisor(request)
    if isinstance(who, Response):
        return who
    board = parts(request).board
    lang = language(request)
    if board is None:
        return error_response(404, "BAD_REQUEST", lang)
    checked = await json_change(request, who)
    if isinstance(checked, Response):
        return checked
    return who, board, checked.value


async def _audit(request: Request, who: Principal, action: str, refusal: str | None = None) -> int:
    found = parts(request)
    if refusal is not None:
        return await found.audit.begin(username=who.name, role=who.role, ip=client_ip(request), action=action,
                                       allowed=False, result=refusal, tenant=found.tenant)
    return await found.audit.begin(username=who.name, role=who.role, ip=client_ip(request), action=action,
                                   tenant=found.tenant)


async def _run(request: Request, who: Principal, action: str, change: Any) -> Response:
    """Audit row, the change, the row's result; the JSON answer."""
    lang = language(request)
    try:
        row = await _audit(request, who, action)
    except StorageUnavailable:  # no row, no change
        return error_response(503, "AUDIT_UNAVAILABLE", lang)
    try:
        answer = await change()
    except BoardError as e:  # past the number of messages standing, or an expiry out of range
        await parts(request).audit.finish(row, e.code)
        return error_response(400, e.code, lang)
    except BoardStoreError as e:
        await parts(request).audit.finish(row, "STORAGE", str(e)[:200])
        return error_response(503, "STORAGE", lang)
    await parts(request).audit.finish(row, "ok")
    log.info("%s by %s", action, who.name)
    return JSONResponse({"ok": True, **answer})


async def thresholds(request: Request) -> Response:
    """GET /api/thresholds."""
    who = supervisor(request)
    if isinstance(who, Response):
        return who
    board = parts(request).board
    if board is None:
        return error_response(404, "BAD_REQUEST", language(request))
    return JSONResponse({"ok": True, "levels": board.levels()})


async def set_threshold(request: Request) -> Response:
    """POST /api/thresholds."""
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    who, board, body = checked
    try:
        if not isinstance(body, dict):
            raise BoardError("BAD_REQUEST")
        if body.get("reset") is True:
            figure, scope, _ = check_levels(body.get("figure"), body.get("scope"), 0, 0)
            levels = None
        else:
            figure, scope, levels = check_levels(body.get("figure"), body.get("scope"), body.get("warn"),
                                                 body.get("alarm"))
    except BoardError as e:
        await _audit(request, who, "threshold", e.code)
        return error_response(400, e.code, language(request))

    async def change() -> dict[str, Any]:
        await board.set_levels(scope, figure, levels, who.name)
        return {"levels": board.levels().get(scope, {})}

    return await _run(request, who, "threshold", change)


async def post_message(request: Request) -> Response:
    """POST /api/wall."""
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    who, board, body = checked
    try:
        if not isinstance(body, dict):
            raise BoardError("BAD_REQUEST")
        text = clean_text(body.get("text"))
        team = body.get("team")
        if team is not None and (not isinstance(team, str) or not 0 < len(team) <= 40):
            raise BoardError("BAD_REQUEST")
        minutes = body.get("minutes")
        if isinstance(minutes, bool) or not isinstance(minutes, int | float):
            raise BoardError("BAD_EXPIRY")
    except BoardError as e:
        await _audit(request, who, "wall_message", e.code)
        return error_response(400, e.code, language(request))

    async def change() -> dict[str, Any]:
        return {"message": (await board.post(text, team, float(minutes), who.name)).to_json()}

    return await _run(request, who, "wall_message", change)


async def remove_message(request: Request) -> Response:
    """POST /api/wall/{id}/remove."""
    checked = await _checked(request)
    if isinstance(checked, Response):
        return checked
    who, board, _ = checked
    raw = request.path_params["message_id"]
    if not raw.isdigit() or len(raw) > 12:
        return error_response(400, "BAD_REQUEST", language(request))

    async def change() -> dict[str, Any]:
        return {"removed": await board.take_down(int(raw), who.name)}

    return await _run(request, who, "wall_remove", change)
