"""A supervisor's levels and wall messages (web/board_api.py, board.py): checked, audited,
stored, on every screen within the turn, and still there after a restart until they expire."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from tests.factories import Running
from tests.servers import until
from wallboard.app import create_app, parts_of
from wallboard.audience import Audience
from wallboard.settings import defaults


def pbx(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503)  # no PBX: the board's own settings need none


@asynccontextmanager
async def board(tmp_path: Path, **sections: Any) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient, str]]:
    settings = defaults().with_values(auth={"mode": "none"}, webhook={"register": False},
                                      storage={"path": str(tmp_path / "wb.db")},
                                      teams=[{"name": "Sales", "extensions": ["1001"]}], **sections)
    http = httpx.AsyncClient(transport=httpx.MockTransport(pbx))
    app = create_app(settings, http_client=http)
    async with app.router.lifespan_context(app):
        await parts_of(app).board.loaded.wait()  # type: ignore[union-attr]
        csrf = parts_of(app).auth.principal_for(httpx_conn()).csrf_token  # type: ignore[union-attr]
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://wb") as client:
            client.headers["X-CSRF-Token"] = csrf
            yield app, client, csrf
    await http.aclose()


def httpx_conn() -> Any:
    from starlette.requests import HTTPConnection
    return HTTPConnection({"type": "http", "headers": [], "query_string": b"", "path": "/"})


async def test_a_wall_message_is_audited_shown_and_survives_a_restart_until_it_expires(tmp_path: Path) -> None:
    async with board(tmp_path) as (app, client, _):
        answer = await client.post("/api/wall", json={"text": "  Họp lúc\n15:00 <b>ngay</b>  ", "team": None,
                                                      "minutes": 30})
        assert answer.status_code == 200, answer.text
        message = answer.json()["message"]
        assert message["text"] == "Họp lúc 15:00 <b>ngay</b>"  # plain text: the page puts it in as text
        wall = Running(app).engine.snapshot(Audience.MASKED)["wall"]
        assert [m["text"] for m in wall.values()] == [message["text"]]
        for body, code in (({"text": "x" * 201, "minutes": 5}, "MESSAGE_TOO_LONG"), ({"text": " ", "minutes": 5},
                           "EMPTY_MESSAGE"), ({"text": "a", "minutes": 0}, "BAD_EXPIRY"),
                           ({"text": "a", "minutes": 24 * 60 + 1}, "BAD_EXPIRY")):
            refused = await client.post("/api/wall", json=body)
            assert (refused.status_code, refused.json()["error"]) == (400, code)
        assert (await client.post("/api/wall", json={"text": "a", "minutes": 1},
                                  headers={"X-CSRF-Token": "forged"})).status_code == 403
        assert (await client.post("/api/wall", content=b"text=a", headers={
            "content-type": "application/x-www-form-urlencoded"})).status_code == 415
        short = await client.post("/api/wall", json={"text": "brief", "team": "Sales", "minutes": 0.01})
        assert short.status_code == 200
        engine = Running(app).engine
        await until(lambda: len(engine.snapshot(Audience.MASKED)["wall"]) == 1, 5, "the short one expiring")
        rows = await parts_of(app).audit.query(limit=20)
        assert [r["action"] for r in rows].count("wall_message") == 6
        assert [(r["action"], r["result"]) for r in rows if r["result"] == "ok"] == [("wall_message", "ok")] * 2
    async with board(tmp_path) as (app, client, _):
        wall = Running(app).engine.snapshot(Audience.MASKED)["wall"]
        assert [m["text"] for m in wall.values()] == [message["text"]]  # the short one expired meanwhile
        removed = await client.post(f"/api/wall/{message['id']}/remove", json={})
        assert removed.json() == {"ok": True, "removed": True}
        assert Running(app).engine.snapshot(Audience.MASKED)["wall"] == {}


async def test_a_message_leaves_the_wall_at_its_expiry(tmp_path: Path) -> None:
    async with board(tmp_path) as (app, client, _):
        assert (await client.post("/api/wall", json={"text": "soon gone", "minutes": 0.02})).status_code == 200
        engine = Running(app).engine
        assert engine.snapshot(Audience.MASKED)["wall"]
        await until(lambda: not engine.snapshot(Audience.MASKED)["wall"], 5, "the message expiring")


async def test_levels_set_on_the_board_win_are_stored_and_reset(tmp_path: Path) -> None:
    async with board(tmp_path) as (app, client, _):
        answer = await client.post("/api/thresholds", json={"scope": "team:Sales", "figure": "waiting",
                                                            "warn": 1, "alarm": 2})
        assert answer.status_code == 200, answer.text
        assert answer.json()["levels"]["waiting"] == {"levels": [1.0, 2.0], "own": True}
        for body in ({"scope": "team:Sales", "figure": "nope", "warn": 1, "alarm": 2},
                     {"scope": "x", "figure": "waiting", "warn": 1, "alarm": 2},
                     {"scope": "", "figure": "waiting", "warn": -1, "alarm": 2},
                     {"scope": "", "figure": "waiting", "warn": True, "alarm": 2}, [1]):
            assert (await client.post("/api/thresholds", json=body)).status_code == 400
    async with board(tmp_path) as (app, client, _):
        levels = (await client.get("/api/thresholds")).json()["levels"]
        assert levels["team:Sales"]["waiting"] == {"levels": [1.0, 2.0], "own": True}
        assert levels[""]["waiting"] == {"levels": [5.0, 10.0], "own": False}
        reset = await client.post("/api/thresholds", json={"scope": "team:Sales", "figure": "waiting", "reset": True})
        assert reset.json()["levels"]["waiting"] == {"levels": [5.0, 10.0], "own": False}
        rows = await parts_of(app).audit.query(limit=20)
        assert sum(r["action"] == "threshold" and r["result"] == "ok" for r in rows) == 2


async def test_the_metrics_show_the_alerts_deliveries(tmp_path: Path) -> None:
    async with board(tmp_path, alerts={"slack_url": "http://slack.invalid/x"}) as (_app, client, _):
        text = (await client.get("/metrics")).text
        assert 'wallboard_alerts_total{channel="slack",result="sent"} 0.0' in text
        assert 'wallboard_alerts_queued{channel="slack"} 0.0' in text
