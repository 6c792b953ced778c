"""The audit log for supervisors: `GET /api/audit` (JSON) and the `/audit` page.

Filters: `date` (YYYY-MM-DD, a local day), `username` (who), `result` ("ok", "refused",
"failed", "pending" or an error code) and `limit` (1 to AUDIT_LIMIT_MAX). A value that
is malformed or out of range answers 400 rather than being guessed at.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from wallboard.principal import Principal
from wallboard.storage import StorageUnavailable
from wallboard.web.context import parts
from wallboard.web.guards import error_message, error_response, language, supervisor
from wallboard.web.pages import render

AUDIT_LIMIT_MAX = 1000
LIMIT = re.compile(r"^[0-9]{1,4}$")
USERNAME_MAX = 128


def _filters(request: Request) -> dict[str, str]:
    return {name: request.query_params.get(name, "").strip()
            for name in ("date", "username", "result", "limit")}


async def _audit_rows(request: Request, filters: dict[str, str]) -> list[dict[str, Any]] | None:
    """The rows for these filters; None when one of them is malformed or out of range."""
    limit = filters["limit"] or "200"
    if not LIMIT.match(limit) or not 1 <= int(limit) <= AUDIT_LIMIT_MAX:
        return None
    if len(filters["username"]) > USERNAME_MAX:
        return None
    try:
        found = parts(request)
        return await found.audit.query(date=filters["date"] or None, username=filters["username"] or None,
                                       result=filters["result"] or None, limit=int(limit), tenant=found.tenant)
    except ValueError:
        return None


async def audit_api(request: Request) -> Response:
    """GET /api/audit: newest first, filtered by ?date=, ?username=, ?result= and ?limit=."""
    principal = supervisor(request)
    if not isinstance(principal, Principal):
        return principal
    try:
        rows = await _audit_rows(request, _filters(request))
    except StorageUnavailable:
        return error_response(503, "AUDIT_LOG_UNAVAILABLE", language(request))
    if rows is None:
        return error_response(400, "BAD_REQUEST", language(request))
    return JSONResponse({"ok": True, "rows": rows})


async def audit_page(request: Request) -> Response:
    principal = supervisor(request, page=True)
    if not isinstance(principal, Principal):
        return principal
    filters = _filters(request)
    try:
        rows = await _audit_rows(request, filters)
    except StorageUnavailable:
        return render(request, "audit.html", {"rows": [], "filters": filters,
                                              "error": error_message(language(request), "AUDIT_LOG_UNAVAILABLE")},
                      status_code=503)
    if rows is None:
        return render(request, "audit.html", {"rows": [], "filters": filters}, status_code=400)
    return render(request, "audit.html", {"rows": rows, "filters": filters})
