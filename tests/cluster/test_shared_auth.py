"""Sessions, their end and the budgets hold across nodes (SPEC section 10, issue 14 part 5):
the store and budgets against a real redis-server, then two in-process nodes (create_app
with cluster.redis_url) sharing it and one PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from tests.services import PostgresServer, RedisServer, postgres_server
from tests.test_hardening import Board
from tests.test_role_matrix import ACCOUNTS, PUBLIC_URL, _csrf_in
from tests.test_sessions import Pbx, Screen
from wallboard.app import parts_of
from wallboard.cluster import shared_auth
from wallboard.cluster.shared_auth import (
    RedisActionBudgets,
    RedisLoginBudgets,
    RedisRateLimiter,
    RedisSessionStore,
    RedisSlots,
)
from wallboard.hub import CLOSE_LOGGED_OUT
from wallboard.i18n import t
from wallboard.principal import Credential
from wallboard.ratelimit import SharedUnavailable
from wallboard.settings import ConfigError, defaults
from wallboard.web.ws import CLOSE_TOO_MANY

SECRET = b"a-session-secret-shared-by-all-nodes"
PASSWORD = "supervisor-pass-9y"


def store(redis: Redis, secret: bytes = SECRET) -> RedisSessionStore:
    return RedisSessionStore(redis, "default", secret, 600, max_age=3600)


# -- the store ---------------------------------------------------------------------------------


async def test_a_session_begun_on_one_node_is_found_on_another_with_its_password_sealed(client: Redis) -> None:
    a, b = store(client), store(client)
    made = await a.begin("boss", "supervisor", "999", credential=Credential(PASSWORD))
    found = await b.fetch(made.id)
    assert found is not None
    assert (found.username, found.role, found.ext, found.csrf_token) == ("boss", "supervisor", "999", made.csrf_token)
    assert found.credential is not None and found.credential.reveal() == PASSWORD
    raw = await client.hgetall(a.key(made.id))
    assert PASSWORD.encode() not in b"".join(raw.values())  # at rest in Redis: sealed
    assert made.id.encode() not in a.key(made.id).encode()  # the key names no cookie
    assert 0 < await client.pttl(a.key(made.id)) <= 600_000  # TTL: the idle timeout
    other = await store(client, b"another-secret-on-a-misconfigured-node").fetch(made.id)
    assert other is not None and other.credential is None  # the wrong secret opens nothing


async def test_the_absolute_lifetime_holds_however_busy_the_session(client: Redis) -> None:
    now = [time.time()]
    sessions = RedisSessionStore(client, "default", SECRET, 600, max_age=3600, clock=lambda: now[0])
    made = await sessions.begin("boss", "supervisor", None)
    for _ in range(12):  # used every 5 minutes: never idle
        now[0] += 299
        assert await sessions.fetch(made.id) is not None
        assert await client.pttl(sessions.key(made.id)) <= int((3600 - (now[0] - made.created)) * 1000)
    now[0] = made.created + 3601
    assert await sessions.fetch(made.id) is None
    assert await client.exists(sessions.key(made.id)) == 0


async def test_an_end_or_a_new_role_on_one_node_is_seen_by_the_others_sweep(client: Redis) -> None:
    a, b = store(client), store(client)
    one = await a.begin("boss", "supervisor", None, credential=Credential(PASSWORD))
    two = await a.begin("eve", "supervisor", None)
    assert await b.fetch(one.id) is not None and await b.fetch(two.id) is not None
    assert await b.refresh() == []
    await a.finish(one.id)
    two.role = "viewer"
    await a.save(two)
    ended = await b.refresh()
    assert [s.username for s in ended] == ["boss"]
    assert b.roles() == {two.id: "viewer"}
    assert await b.fetch(one.id) is None
    await a.save(one)  # a re-check finishing after the logout does not bring it back
    assert await client.exists(a.key(one.id)) == 0


async def test_a_supervisors_own_phone_is_hidden_on_every_node(client: Redis) -> None:
    a, b = store(client), store(client)
    boss = await a.begin("boss", "supervisor", "1009")
    await b.refresh()
    assert b.supervisor_exts() == {"1009"}  # a supervisor b never saw: its phone is no agent there either
    boss.ext = "1010"
    await a.save(boss)
    b._phones_read = 0.0
    await b.refresh()
    assert b.supervisor_exts() == {"1010"}
    await client.delete(a.key(boss.id))  # idle: its TTL ran out, nobody told
    b._phones_read = 0.0
    await b.refresh()
    assert b.supervisor_exts() == set() and await client.hlen(b.phones_key) == 0


async def test_one_node_asks_the_pbx_about_a_session_per_period(client: Redis) -> None:
    a, b = store(client), store(client)
    made = await a.begin("boss", "supervisor", None, credential=Credential(PASSWORD))
    assert await a.claim_recheck(made, 30.0)
    assert not await b.claim_recheck(made, 30.0)
    assert not await a.claim_recheck(made, 30.0)


async def test_login_budgets_are_counted_once_across_nodes(client: Redis) -> None:
    a, b = RedisLoginBudgets(client, "default"), RedisLoginBudgets(client, "default")
    for i in range(10):  # address_username: 10 a minute, whichever node is asked
        assert await (a if i % 2 else b).attempt_async("10.0.0.1", "boss") == 0
    wait = await a.attempt_async("10.0.0.1", "Boss ")
    assert 50 < wait <= 60
    assert await b.attempt_async("10.0.0.1", "boss") > 0
    await b.succeeded_async("10.0.0.1", "boss")  # a good login gives its attempt back
    assert await a.attempt_async("10.0.0.1", "boss") == 0
    other = RedisLoginBudgets(client, "acme")  # another tenant's budgets are its own
    assert await other.attempt_async("10.0.0.1", "boss") == 0


async def test_a_supervisors_actions_per_minute_are_counted_across_nodes(
        client: Redis, redis_srv: RedisServer) -> None:
    a = RedisRateLimiter(client, "default", "supervisor", 60.0)
    b = RedisRateLimiter(client, "default", "supervisor", 60.0)
    assert [await (a if i % 2 else b).hit_async("boss", 4) for i in range(5)] == [True] * 4 + [False]
    redis_srv.kill()
    assert await a.hit_async("boss", 4)  # Redis down: this node's own count (fail open, as the budgets)


async def test_redis_down_login_budgets_fail_closed_action_budgets_per_node_sessions_as_last_seen(
        client: Redis, redis_srv: RedisServer) -> None:
    sessions = store(client)
    made = await sessions.begin("boss", "supervisor", None)
    assert await sessions.fetch(made.id) is not None
    login, actions = RedisLoginBudgets(client, "default"), RedisActionBudgets(client, "default")
    redis_srv.kill()
    with pytest.raises(SharedUnavailable):
        await login.attempt_async("10.0.0.1", "boss")
    with pytest.raises(SharedUnavailable):
        await sessions.begin("eve", "viewer", None)
    assert [await actions.attempt_async("viewer:v", "10.0.0.1") for _ in range(60)] == [0.0] * 60
    assert await actions.attempt_async("viewer:v", "10.0.0.1") > 0  # this node's own count
    found = await sessions.fetch(made.id)  # seen here before the outage: as it was
    assert found is not None and found.username == "boss"
    assert await sessions.refresh() == []  # Redis silent is not "ended": no screen closed
    await sessions.finish(made.id)  # logged out while Redis is down: ended here at once ...
    assert await sessions.fetch(made.id) is None
    redis_srv.start()
    assert await sessions.refresh() == []  # ... and deleted there by the first sweep back
    assert await client.exists(sessions.key(made.id)) == 0


async def test_socket_slots_are_counted_across_nodes_and_a_dead_nodes_lapse(
        client: Redis, redis_srv: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = RedisSlots(client, "default"), RedisSlots(client, "default")
    assert await a.acquire_async("session:s", 2) and await b.acquire_async("session:s", 2)
    assert not await a.acquire_async("session:s", 2) and not await b.acquire_async("session:s", 2)
    assert await a.acquire_async("session:other", 2)
    await a.release_async("session:s")
    await asyncio.gather(*a._releasing)  # the ZREM is not awaited by the closing socket
    assert await b.acquire_async("session:s", 2)
    monkeypatch.setattr(shared_auth, "SLOT_LAPSES_S", 0.2)
    dead = RedisSlots(client, "default")
    assert await dead.acquire_async("session:t", 1)  # its node dies: never released, never renewed
    assert not await b.acquire_async("session:t", 1)
    ((_, lapses),) = await client.zrange(dead._key("session:t"), 0, -1, withscores=True)
    await asyncio.sleep(max(0.0, lapses / 1000 - time.time()) + 0.01)  # past the instant Redis holds
    assert await b.acquire_async("session:t", 1)
    redis_srv.kill()
    assert await a.acquire_async("session:u", 1)  # Redis down: this node's own count
    assert not await a.acquire_async("session:u", 1)
    await a.release_async("session:u")
    assert a.count("session:u") == 0


def test_a_cluster_with_logins_needs_one_session_secret() -> None:
    with pytest.raises(ConfigError, match="session_secret must be set"):
        defaults().with_values(cluster={"redis_url": "redis://127.0.0.1:1/0"},
                               storage={"database_url": "postgresql://u:p@127.0.0.1:1/db"})


# -- two nodes -----------------------------------------------------------------------------------


@pytest.fixture
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
async def nodes(tmp_path: Path, redis_srv: RedisServer, pg: PostgresServer) -> AsyncIterator[tuple[Board, Board]]:
    boards: list[Board] = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            boards.append(await Board.open(
                tmp_path / name, Pbx(), server={"public_url": PUBLIC_URL, "session_secret": SECRET.decode(),
                                   "max_sockets_per_session": 2},
                storage={"path": str(tmp_path / name / "wallboard.db"), "database_url": pg.url},
                cluster={"redis_url": redis_srv.url, "node_id": name, "lease_seconds": 2.0}))
        yield boards[0], boards[1]
    finally:
        for board in boards:
            await board.close()


def as_on(board: Board, role: str, other: Board) -> None:
    """`board`'s browser of `role` carries the cookies of `other`'s: the same person, sent to another node."""
    board.browsers[role].http.cookies = other.browsers[role].http.cookies
    board.browsers[role].csrf = other.browsers[role].csrf


async def test_logout_on_one_node_closes_the_sessions_screens_on_another(nodes: tuple[Board, Board]) -> None:
    a, b = nodes
    as_on(b, "supervisor", a)
    state = await b.browsers["supervisor"].http.get("/api/state")
    assert state.status_code == 200  # a session made on node a is good on node b
    screen = Screen(b, "supervisor")
    assert await screen.open() == "open"
    try:
        out = await a.browsers["supervisor"].http.post("/logout", data={"csrf_token": a.browsers["supervisor"].csrf})
        assert out.status_code == 303
        started = time.monotonic()
        assert await screen.closed() == CLOSE_LOGGED_OUT  # b's keeper sweep: within about a second
        print(f"logout on a -> screen on b closed in {time.monotonic() - started:.2f} s")
        assert time.monotonic() - started < 3.0
        assert (await b.browsers["supervisor"].http.get("/api/state")).status_code == 401
    finally:
        await screen.end()


async def test_a_sessions_sockets_are_capped_across_the_nodes(nodes: tuple[Board, Board]) -> None:
    a, b = nodes
    as_on(b, "viewer", a)
    screens = [Screen(a, "viewer"), Screen(b, "viewer")]
    try:
        assert [await screen.open() for screen in screens] == ["open", "open"]
        for board in (a, b):  # server.max_sockets_per_session = 2, for the two nodes together
            third = Screen(board, "viewer")
            assert await third.open() == CLOSE_TOO_MANY
    finally:
        for screen in screens:
            await screen.end()


async def test_a_login_budget_is_shared_by_the_nodes_and_redis_down_is_said(
        nodes: tuple[Board, Board], redis_srv: RedisServer) -> None:
    a, b = nodes

    async def attempt(board: Board, password: str) -> httpx.Response:
        http = board.browsers["anonymous"].http
        token = _csrf_in((await http.get("/login")).text)
        return await http.post("/login", data={"username": "viewer@sim", "password": password,
                                               "csrf_token": token, "next": "/"})

    statuses = [(await attempt(a if i % 2 else b, "wrong")).status_code for i in range(10)]
    assert statuses == [401] * 10
    refused = await attempt(a, ACCOUNTS["viewer@sim"][0])  # the right password, too late: on either node
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert (await attempt(b, "wrong")).status_code == 429

    redis_srv.kill()
    down = await attempt(a, "wrong")
    assert down.status_code == 503 and down.headers["Retry-After"] == "5"
    assert t("vi", "login.error.shared_down") in down.text  # the board's language (display.language)
    # the board keeps running: a session this node saw before is served as it was
    assert (await a.browsers["supervisor"].http.get("/api/state")).status_code == 200
    parts = parts_of(a.app)
    await parts.keeper.sweep()  # Redis silent ends no session
    assert len(parts.auth.sessions) >= 2
