"""The history's routes through the real app: the page, the curve, the CSV (UTF-8 with a
BOM, parsed back here) and JSON exports, for supervisors only, under the tenant's base path."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import agent
from wallboard.app import create_app, parts_of
from wallboard.history.recorder import Recorder
from wallboard.i18n import catalogue
from wallboard.pbx.models import Cdr
from wallboard.pbx.times import PbxTime
from wallboard.settings import Settings, defaults

CLOCK = PbxTime("Asia/Ho_Chi_Minh")
DAY = "2026-12-03"
NAME = "Nguyễn Thị Ánh"


def cdr(n: int, at: str, *, ext: str = "1001", status: str = "ANSWERED", wait: int = 5, talk: int = 60,
        hotline: str = "19001234", dest: str = "ringgroup-6001", cause: str = "NORMAL_CLEARING") -> Cdr:
    started = CLOCK.parse(f"{DAY} {at}")
    assert started is not None
    answered = CLOCK.format(started + wait * 1000) if status == "ANSWERED" else ""
    ended = CLOCK.format(started + (wait + talk) * 1000)
    return Cdr(id=f"cdr-{n}", sip_call_id="", cause=cause, duration=wait + talk, direction="inbound",
               recording_url="", extension=ext, from_number="0899000111", to_number=hotline, receive_dest=dest,
               time_started=CLOCK.format(started), time_answered=answered, time_ended=ended, status=status)


def settings_for(tmp_path: Path, **sections: Any) -> Settings:
    return defaults().with_values(**{"webhook": {"register": False}, "storage": {"path": str(tmp_path / "wb.db")},
                                     **sections})


async def filled(recorder: Recorder) -> None:
    recorder.add_cdrs([
        cdr(1, "09:01:00"), cdr(2, "09:05:00", wait=40), cdr(3, "09:20:00", ext="1002"),
        cdr(4, "09:22:00", status="NO ANSWER", talk=0, cause="ORIGINATOR_CANCEL"),
        cdr(5, "14:00:00", hotline="19005678", ext="1002", talk=120),
    ], True)
    assert await recorder.write() > 0


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_for(tmp_path, auth={"mode": "none"}))
    parts = parts_of(app)
    assert parts.history is not None
    await filled(parts.history)
    parts.engine.live.apply_agents([agent("1001", name=NAME), agent("1002")], 0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://wb") as http:
        yield http
    await parts.history.history.close()


def rows_of(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


async def test_the_interval_csv_has_its_columns_and_the_counts(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/history/export.csv", params={"table": "intervals", "day": DAY, "lang": "en"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert f'filename="wallboard-intervals-{DAY}.csv"' in answer.headers["content-disposition"]
    rows = rows_of(answer.content)
    words = catalogue("en")
    assert rows[0] == [words[f"history.col.{c}"] for c in ("day", "start", "offered", "answered", "missed",
                                                          "abandoned", "service_level", "avg_wait", "avg_talk",
                                                          "talk_seconds")]
    by_start = {r[1]: r for r in rows[1:]}
    assert list(by_start) == ["09:00", "09:15", "14:00"]
    assert by_start["09:00"] == [DAY, "09:00", "2", "2", "0", "0", "50.0", "22.5", "60.0", "120"]
    assert by_start["09:15"][2:6] == ["2", "1", "1", "1"]  # one answered, one the caller gave up on


async def test_the_agent_csv_keeps_vietnamese_names_and_a_range_adds_days(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/history/export.csv", params={"table": "agents", "from": DAY, "to": "2026-12-04",
                                                                 "lang": "vi"})
    rows = rows_of(answer.content)
    assert rows[0][:2] == [catalogue("vi")["history.col.ext"], catalogue("vi")["history.col.name"]]
    assert rows[1:] == [["1001", NAME, "2", "1", "120", "60.0"], ["1002", "Agent 1002", "2", "0", "180", "90.0"]]


async def test_json_export_and_one_hotline(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/history/export.json", params={"day": DAY, "group": "hotline:19005678"})
    body = answer.json()
    assert body["group"] == "hotline:19005678" and body["table"] == "intervals"
    assert [(r["start"], r["offered"], r["talk_seconds"]) for r in body["rows"]] == [("14:00", 1, 120)]
    team = (await client.get("/api/history/export.json", params={"day": DAY, "group": "team:ringgroup-6001"})).json()
    assert sum(r["offered"] for r in team["rows"]) == 5


async def test_the_curve_has_today_yesterday_and_last_week(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/history/curve", params={"day": DAY})).json()
    series = body["series"]
    assert [series[k]["day"] for k in ("today", "yesterday", "last_week")] == [DAY, "2026-12-02", "2026-11-26"]
    assert len(series["today"]["offered"]) == 96 and series["today"]["offered"][36:38] == [2, 2]
    assert sum(series["yesterday"]["offered"]) == 0
    assert series["today"]["slots"] == 96  # a past day: every interval has begun


async def test_the_page_shows_both_tables(client: httpx.AsyncClient) -> None:
    page = await client.get("/history", params={"day": DAY, "lang": "en"})
    assert page.status_code == 200
    assert page.text.count("data-slot=") == 3 and 'data-agent="1001"' in page.text and NAME in page.text
    assert 'value="hotline:19001234"' in page.text and 'value="team:ringgroup-6001"' in page.text
    assert "/api/history/export.csv?table=agents" in page.text
    assert 'data-history-range' in page.text and f'name="from" value="{DAY}"' in page.text
    agent_page = await client.get("/history", params={"day": DAY, "group": "agent:1002"})
    assert agent_page.text.count("data-slot=") == 2 and 'data-agent="1001"' not in agent_page.text


@pytest.mark.parametrize("params", [
    {"day": "2026-13-01"}, {"group": "nope"}, {"group": "all:x"}, {"from": "2026-12-03", "to": "2026-12-01"},
    {"from": "2026-01-01", "to": "2026-12-01"}, {"table": "calls"}])
async def test_malformed_queries_answer_400(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    assert (await client.get("/api/history/export.json", params=params)).status_code == 400


async def test_only_supervisors_and_only_their_tenant(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, tenants=[{"id": "acme", "api_key": "k-acme"}, {"id": "beta", "api_key": "k-b"}])
    app = create_app(settings)
    acme = parts_of(app, "acme")
    assert acme.history is not None
    await filled(acme.history)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://wb") as http:
        assert (await http.get("/t/acme/api/history/export.json", params={"day": DAY})).status_code == 401
        page = await http.get("/t/acme/history")
        assert page.status_code in (302, 303) and "/t/acme/login" in page.headers["location"]
        viewer = parts_of(app, "beta")
        assert viewer.history is not None
        # Beta's supervisors would read beta's rows only: the tenant is part of every query.
        store = viewer.history.history.store
        assert await store.intervals("beta", DAY, DAY, "all", "") == []
        assert len(await store.intervals("acme", DAY, DAY, "all", "")) == 3
    await acme.history.history.close()


async def test_the_database_down_is_503_and_the_board_still_answers(tmp_path: Path) -> None:
    app = create_app(settings_for(tmp_path, auth={"mode": "none"},
                                  storage={"database_url": "postgresql://x@127.0.0.1:1/none"}))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://wb") as http:
        answer = await http.get("/api/history/curve")
        assert answer.status_code == 503 and answer.json()["error"] == "STORAGE_UNAVAILABLE"
        page = await http.get("/history")
        assert page.status_code == 503 and "data-history-unavailable" in page.text
        assert (await http.get("/api/state")).status_code == 200
    today = datetime.now(CLOCK.zone).date()
    assert today - timedelta(days=1) < today
