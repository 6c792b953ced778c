"""PostgreSQL down during supervisor actions, with the real server: an action is never done
without its audit row. While the database is down an action is refused (503
AUDIT_UNAVAILABLE, in the screen's language) and the PBX is not asked; the board keeps
running; once PostgreSQL is back, actions work again with no restart, and the result of
the action that was under way when it went down is written."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.requests import HTTPConnection

from tests.services import PostgresServer, postgres_server
from wallboard.app import create_app, parts_of
from wallboard.i18n import t
from wallboard.settings import defaults

CALL = "6a65480c-1111-2222-3333-444455556666"


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


class Pbx:
    """Answers the actions; `stop_database` stops PostgreSQL while it is being asked."""

    def __init__(self, pg: PostgresServer) -> None:
        self.pg = pg
        self.actions: list[str] = []
        self.stop_database = False
        self.stopped = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/v1/auth/token"):
            return httpx.Response(200, json={"data": {"token": "t", "expired": 4_000_000_000, "user_id": "u"}})
        if request.method == "POST" and "/v1/call/" in request.url.path:
            self.actions.append(request.url.path.rsplit("/", 1)[-1])
            if self.stop_database:
                self.pg.stop("immediate")
                self.stopped = True
            return httpx.Response(200, json={"status": "success"})
        return httpx.Response(503)  # the poller's reads: the board runs on what it has


@asynccontextmanager
async def board(pg: PostgresServer, pbx: Pbx, language: str) -> AsyncIterator[httpx.AsyncClient]:
    """A running wallboard on that PostgreSQL and PBX, and a supervisor's client of it."""
    settings = defaults().with_values(auth={"mode": "none"}, webhook={"register": False},
                                      display={"language": language}, storage={"database_url": pg.url})
    async with httpx.AsyncClient(transport=httpx.MockTransport(pbx)) as http:
        app = create_app(settings, http_client=http)
        conn = HTTPConnection({"type": "http", "headers": [], "query_string": b"", "path": "/"})
        csrf = parts_of(app).auth.principal_for(conn).csrf_token  # type: ignore[union-attr]
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app), base_url="http://wb", headers={"X-CSRF-Token": csrf}) as client:
            yield client


async def test_postgres_down_refuses_actions_keeps_the_board_and_comes_back(pg: PostgresServer) -> None:
    pbx = Pbx(pg)
    async with board(pg, pbx, "vi") as client:

        async def act(action: str) -> httpx.Response:
            return await client.post(f"/api/calls/{CALL}/{action}", json={"ext": "999"})

        try:
            first = await act("listen")
            assert first.json()["ok"] is True, first.text
            pbx.stop_database = True  # PostgreSQL goes down while the PBX is being asked
            under_way = await act("whisper")
            assert under_way.json()["ok"] is True  # done, with its row written before
            pbx.stop_database = False

            refused = await act("barge")
            assert refused.status_code == 503
            assert refused.json() == {"ok": False, "error": "AUDIT_UNAVAILABLE",
                                      "message": t("vi", "error.AUDIT_UNAVAILABLE")}
            assert pbx.actions == ["listen", "whisper"]  # the PBX was not asked
            assert (await client.get("/api/state")).status_code == 200  # the board keeps running
            assert (await client.get("/api/audit")).status_code == 503
        finally:
            if pbx.stopped:
                pg.start()

        assert (await act("transfer")).json()["ok"] is True  # no restart
        assert pbx.actions == ["listen", "whisper", "transfer"]
        rows = (await client.get("/api/audit")).json()["rows"]
        assert [(r["action"], r["result"]) for r in rows] == [("transfer", "ok"), ("whisper", "ok"),
                                                              ("listen", "ok")]


async def test_a_node_started_while_postgres_is_down_runs_its_board_and_audits_once_it_is_back(
        pg: PostgresServer) -> None:
    pbx = Pbx(pg)
    pg.stop("immediate")
    try:
        async with board(pg, pbx, "en") as client:
            assert (await client.get("/api/state")).status_code == 200
            refused = await client.post(f"/api/calls/{CALL}/listen", json={"ext": "999"})
            assert (refused.status_code, refused.json()["error"]) == (503, "AUDIT_UNAVAILABLE")
            assert refused.json()["message"] == t("en", "error.AUDIT_UNAVAILABLE")
            assert pbx.actions == []
            pg.start()
            done = await client.post(f"/api/calls/{CALL}/listen", json={"ext": "999"})
            assert done.json()["ok"] is True, done.text
            assert pbx.actions == ["listen"]
    finally:
        if not (pg.data / "postmaster.pid").exists():
            pg.start()
