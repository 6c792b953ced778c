"""The audit log for supervisors: `GET /api/audit` (JSON) and the `/audit` page."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from wallboard.principal import Principal
from wallboard.web.context import parts
from wallboard.web.guards import error_response, language, supervisor
from wallboard.web.pages import render

AUDIT_LIMIT_MAX = 1000


def _filters(request: Request) -> dict[str, str]:
    return {name: request.query_params.get(name, "").strip() for name in ("date", "username")}


async def _audit_rows(request: Request, filters: dict[str, str]) -> list[dict[str, Any]] | None:
    """The rows for these filters; None when the date is not YYYY-MM-DD."""
    try:
        limit = int(request.query_params.get("limit", "200"))
    except ValueError:
        limit = 200
    try:
        return await parts(request).audit.query(date=filters["date"] or None,
                                                username=filters["username"] or None,
                                                limit=max(1, min(limit, AUDIT_LIMIT_MAX)))
    except ValueError:
        return None


async def audit_api(request: Request) -> Response:
    """GET /api/audit: newest first, filtered by ?date=YYYY-MM-DD and ?username=."""
    principal = supervisor(request)
    if not isinstance(principal, Principal):
        return principal
    rows = await _audit_rows(request, _filters(request))
    if rows is None:
        return error_response(400, "BAD_REQUEST", language(request))
    return JSONResponse({"ok": True, "rows": rows})


async def audit_page(request: Request) -> Response:
    principal = supervisor(request, page=True)
    if not isinstance(principal, Principal):
        return principal
    filters = _filters(request)
    rows = await _audit_rows(request, filters)
    if rows is None:
        return render(request, "audit.html", {"rows": [], "filters": filters}, status_code=400)
    return render(request, "audit.html", {"rows": rows, "filters": filters})
