"""One node in-process (create_app with cluster.redis_url): started while Redis is down it
says so in one sentence, serves an empty board marked not ready, and leads once Redis is up;
a webhook is answered only once Redis has it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.factories import webhook_body
from tests.servers import listener, port_of, serving, until
from tests.services import PostgresServer, RedisServer, postgres_server
from wallboard.app import create_app, parts_of
from wallboard.settings import defaults

SECRET = "node-test-webhook-secret"


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


async def test_a_node_started_without_redis_says_so_and_leads_once_it_is_up(
        tmp_path: Path, pg: PostgresServer, redis_srv: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    redis_srv.kill()
    sock = listener()
    settings = defaults().with_values(
        server={"public_url": f"http://127.0.0.1:{port_of(sock)}", "port": port_of(sock)},
        pbx={"base_url": "http://127.0.0.1:9", "api_key": "k", "timeout": 0.5},
        webhook={"secret": SECRET, "register": False}, auth={"mode": "none"},
        storage={"path": str(tmp_path / "wb.db"), "database_url": pg.url},
        cluster={"redis_url": redis_srv.url, "node_id": "lonely", "lease_seconds": 1.0})
    app = create_app(settings)
    async with serving(app, sock) as url, httpx.AsyncClient(base_url=url, timeout=5) as http:
        said = [r.getMessage() for r in caplog.records if "is unreachable" in r.getMessage()]
        assert said and said[0].startswith(f"Redis at {redis_srv.url} is unreachable"), said
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["role"] == "follower" and ready.json()["reason"] == "no state read from Redis yet"
        assert (await http.post(f"/hooks/pbx/{SECRET}", json=webhook_body())).status_code == 503
        assert (await http.get("/api/state")).json()["agents"] == []

        redis_srv.start()
        node = parts_of(app).cluster
        assert node is not None
        await until(lambda: node.leading, 10, "the node to lead once Redis is up")
        assert (await http.get("/readyz")).json()["role"] == "leader"
        assert (await http.post(f"/hooks/pbx/{SECRET}", json=webhook_body("ringing", "c-77"))).status_code == 200
        await until(lambda: node.mirror.call("c-77") is not None, 5, "the webhook on the board")
