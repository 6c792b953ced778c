"""The history for supervisors: the `/history` page (pick a day, a hotline or team, an
agent: the interval table and the per-agent table), the intraday curve beside yesterday's
and the same weekday last week's (`/api/history/curve`, drawn by static/js/history.js),
and the exports (`/api/history/export.csv` and `.json`: the intervals or the agents, a day
or a range). Numbers are masked as for the screen's role (audience.py).

Query: `day` or `from`/`to` (YYYY-MM-DD, PBX local, a range of at most RANGE_MAX_DAYS),
`group` (`all`, `hotline:<number>`, `team:<name>`, `agent:<ext>`), `table` (`intervals`,
`agents`). Anything malformed answers 400; the storage database down answers 503.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from wallboard.audience import mask_number
from wallboard.history.buckets import KINDS, SLOT_MINUTES, SLOTS_PER_DAY, Bucket
from wallboard.history.recorder import History
from wallboard.history.store import Interval
from wallboard.i18n import catalogue
from wallboard.principal import Principal
from wallboard.storage import StorageUnavailable
from wallboard.web.context import parts, site
from wallboard.web.guards import error_response, language, supervisor
from wallboard.web.pages import render

RANGE_MAX_DAYS = 92
GROUP_MAX = 64
INTERVAL_COLUMNS = ("day", "start", "offered", "answered", "missed", "abandoned", "service_level", "avg_wait",
                    "avg_talk", "talk_seconds")
AGENT_COLUMNS = ("ext", "name", "answered", "missed", "talk_seconds", "avg_talk")


class BadQuery(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Query:
    first: date
    last: date
    kind: str
    group: str

    @property
    def group_param(self) -> str:
        return "all" if self.kind == "all" else f"{self.kind}:{self.group}"


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadQuery(text) from None


def _query(request: Request, today: date) -> Query:
    q = request.query_params
    one = q.get("day", "").strip()
    first = _day(q.get("from", "").strip() or one or today.isoformat())
    last = _day(q.get("to", "").strip() or one or first.isoformat())
    if last < first or (last - first).days >= RANGE_MAX_DAYS:
        raise BadQuery("range")
    kind, _, group = (q.get("group", "").strip() or "all").partition(":")
    if kind not in KINDS or len(group) > GROUP_MAX or (kind == "all") != (group == ""):
        raise BadQuery("group")
    return Query(first, last, kind, group)


def _today(request: Request) -> date:
    return datetime.now(parts(request).engine.time.zone).date()


async def _history(request: Request) -> History:
    history = site(request).history
    if history is None or not await history.open():
        raise StorageUnavailable("the storage database cannot be reached")
    return history


def _shown(kind: str, group: str, masked: bool) -> str:
    return (mask_number(group) or "") if masked and kind == "hotline" else group


def _interval_row(interval: Interval) -> dict[str, Any]:
    f = interval.counts.figures()
    end = (interval.slot + 1) * SLOT_MINUTES
    return {"day": interval.day, "start": interval.start, "end": f"{end // 60:02d}:{end % 60:02d}",
            **{k: f[k] for k in ("offered", "answered", "missed", "abandoned", "service_level", "avg_wait",
                                 "avg_talk")}, "talk_seconds": round(interval.counts.talk_ms / 1000)}


def _agent_rows(request: Request, totals: dict[str, Bucket]) -> list[dict[str, Any]]:
    agents = parts(request).engine.live.agents
    rows = []
    for ext, b in sorted(totals.items(), key=lambda item: (-item[1].answered, item[0])):
        rows.append({"ext": ext, "name": str(agents.get(ext, {}).get("name") or ""), "answered": b.answered,
                     "missed": b.missed, "talk_seconds": round(b.talk_ms / 1000),
                     "avg_talk": b.figures()["avg_talk"]})
    return rows


async def _tables(request: Request, query: Query) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Bucket]:
    history = await _history(request)
    tenant = parts(request).tenant
    found = await history.store.intervals(tenant, query.first.isoformat(), query.last.isoformat(), query.kind,
                                          query.group)
    intervals = [i for i in found if i.counts.offered]
    total = Bucket()
    for i in intervals:
        total.add(i.counts)
    agents = await history.store.totals(tenant, query.first.isoformat(), query.last.isoformat(), "agent")
    if query.kind == "agent":
        agents = {query.group: agents[query.group]} if query.group in agents else {}
    return [_interval_row(i) for i in intervals], _agent_rows(request, agents), total


def _unavailable(request: Request) -> Response:
    return error_response(503, "STORAGE_UNAVAILABLE", language(request))


async def history_page(request: Request) -> Response:
    principal = supervisor(request, page=True)
    if not isinstance(principal, Principal):
        return principal
    today = _today(request)
    try:
        query = _query(request, today)
    except BadQuery:
        query, status = Query(today, today, "all", ""), 400
    else:
        status = 200
    context: dict[str, Any] = {"query": query, "day": query.first.isoformat(), "today": today.isoformat(),
                               "intervals": [], "agents": [], "total": None, "groups": {}, "unavailable": False}
    try:
        history = await _history(request)
        intervals, agents, total = await _tables(request, query)
        groups = await history.store.groups(parts(request).tenant, query.first.isoformat(), query.last.isoformat())
    except StorageUnavailable:
        context["unavailable"] = True
        return render(request, "history.html", context, status_code=503)
    masked = principal.audience.masked
    context.update(intervals=intervals, agents=agents, total=total.figures() if total.offered else None,
                   groups={kind: [(name, _shown(kind, name, masked)) for name in names]
                           for kind, names in groups.items()})
    return render(request, "history.html", context, status_code=status)


async def curve_api(request: Request) -> Response:
    """Offered and answered calls and the service level per interval of a day, of the day
    before and of the same weekday a week before."""
    principal = supervisor(request)
    if not isinstance(principal, Principal):
        return principal
    try:
        query = _query(request, _today(request))
        history = await _history(request)
    except BadQuery:
        return error_response(400, "BAD_REQUEST", language(request))
    except StorageUnavailable:
        return _unavailable(request)
    tenant = parts(request).tenant
    series: dict[str, Any] = {}
    try:
        for name, back in (("today", 0), ("yesterday", 1), ("last_week", 7)):
            day = (query.first - timedelta(days=back)).isoformat()
            curve = await history.store.day_curve(tenant, day, query.kind, query.group)
            series[name] = {"day": day, "slots": _slots_so_far(request, day), "offered": [b.offered for b in curve],
                            "answered": [b.answered for b in curve],
                            "service_level": [b.figures()["service_level"] for b in curve]}
    except StorageUnavailable:
        return _unavailable(request)
    return JSONResponse({"ok": True, "slot_minutes": SLOT_MINUTES, "group": query.group_param, "series": series})


def _slots_so_far(request: Request, day: str) -> int:
    """How many of the day's intervals have begun: all of a past day, none of a future one."""
    now = datetime.now(parts(request).engine.time.zone)
    if day != now.date().isoformat():
        return SLOTS_PER_DAY if day < now.date().isoformat() else 0
    return (now.hour * 60 + now.minute) // SLOT_MINUTES + 1


async def _export(request: Request) -> tuple[Query, str, list[dict[str, Any]]] | Response:
    principal = supervisor(request)
    if not isinstance(principal, Principal):
        return principal
    table = request.query_params.get("table", "intervals")
    try:
        query = _query(request, _today(request))
        if table not in ("intervals", "agents"):
            raise BadQuery(table)
        intervals, agents, _ = await _tables(request, query)
    except BadQuery:
        return error_response(400, "BAD_REQUEST", language(request))
    except StorageUnavailable:
        return _unavailable(request)
    if principal.audience.masked:  # (supervisors see numbers whole: the rule, should a role be masked)
        query = Query(query.first, query.last, query.kind, _shown(query.kind, query.group, True))
    return query, table, intervals if table == "intervals" else agents


def _filename(query: Query, table: str, ext: str) -> str:
    days = query.first.isoformat() if query.first == query.last else f"{query.first}_{query.last}"
    return f"wallboard-{table}-{days}.{ext}"


async def export_json(request: Request) -> Response:
    found = await _export(request)
    if isinstance(found, Response):
        return found
    query, table, rows = found
    return JSONResponse({"ok": True, "from": query.first.isoformat(), "to": query.last.isoformat(),
                         "group": query.group_param, "table": table, "rows": rows},
                        headers={"Content-Disposition": f'attachment; filename="{_filename(query, table, "json")}"'})


async def export_csv(request: Request) -> Response:
    """UTF-8 with a BOM, so Excel reads Vietnamese names right; headers in the screen's language."""
    found = await _export(request)
    if isinstance(found, Response):
        return found
    query, table, rows = found
    words = catalogue(language(request))
    columns = INTERVAL_COLUMNS if table == "intervals" else AGENT_COLUMNS
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([words[f"history.col.{c}"] for c in columns])
    for row in rows:
        writer.writerow(["" if row[c] is None else _cell(row[c]) for c in columns])
    return Response(("\ufeff" + out.getvalue()).encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{_filename(query, table, "csv")}"'})


def _cell(value: Any) -> Any:
    # A name starting with = + - @ would be a formula to a spreadsheet (CSV injection).
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
