"""Issue 12's limits and headers, through the real app: sockets per session, kiosk token and
address; client messages (size, flood); /ws without Origin; the audit log under a flood of
refused attempts; HSTS, CSP connect-src and no-store; silent monitoring stays silent on
the wall; the webhook secret file is private."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import orjson
import pytest

from tests.factories import event, webhook_body
from tests.test_hardening import Board
from tests.test_role_matrix import CALL, HOOK_SECRET, KIOSK_TOKEN, matrix_settings, pbx_handler
from tests.test_sessions import Pbx, Screen
from wallboard.app import create_app, parts_of
from wallboard.hub import MAX_CLIENT_MESSAGE
from wallboard.pbx.client import PbxClient
from wallboard.pbx.times import PbxTime
from wallboard.poller import now_ms
from wallboard.ratelimit import ACTION_BUDGETS
from wallboard.registration import load_secret

CAP = 20  # server.max_sockets_per_session's default


@pytest.fixture
async def board(tmp_path: Path) -> AsyncIterator[Board]:
    opened = await Board.open(tmp_path, Pbx())
    try:
        yield opened
    finally:
        await opened.close()


# -- sockets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["supervisor", "viewer", "kiosk"])
async def test_at_most_the_cap_of_sockets_per_session_or_kiosk_token(board: Board, role: str) -> None:
    screens = [Screen(board, role) for _ in range(CAP)]
    assert [await s.open() for s in screens] == ["open"] * CAP
    over = Screen(board, role)
    assert await over.open() == 4429
    assert over.accepted  # told why, not a failed handshake
    other = Screen(board, "viewer" if role != "viewer" else "supervisor")
    assert await other.open() == "open"  # another session is not held up
    await screens[0].end()
    again = Screen(board, role)
    assert await again.open() == "open"  # a closed one frees its place
    for screen in [*screens[1:], other, again]:
        await screen.end()


def test_uvicorn_refuses_bigger_client_messages_too() -> None:
    from starlette.applications import Starlette

    from wallboard.server import config

    assert config(Starlette(), "127.0.0.1", 0).ws_max_size == MAX_CLIENT_MESSAGE


async def test_anonymous_attempts_per_address_are_refused_at_the_handshake(board: Board) -> None:
    codes = [await Screen(board, "anonymous", client=("203.0.113.9", 1)).open() for _ in range(CAP + 1)]
    assert codes == [4401] * CAP + [4429]
    refused = Screen(board, "anonymous", client=("203.0.113.9", 1))
    assert await refused.open() == 4429 and not refused.accepted
    assert await Screen(board, "anonymous", client=("203.0.113.10", 1)).open() == 4401


async def test_a_client_message_over_4_kib_closes_the_socket(board: Board) -> None:
    screen = Screen(board, "kiosk")
    assert await screen.open() == "open"
    await screen.say('{"type": "resync"}')  # a small one is fine
    await screen.say('{"type": "resync", "pad": "' + "x" * MAX_CLIENT_MESSAGE + '"}')
    assert await screen.closed() == 1009
    await screen.end()


async def test_a_flood_of_client_messages_is_cut_off(board: Board) -> None:
    screen = Screen(board, "viewer")
    assert await screen.open() == "open"
    for _ in range(200):
        await screen.say('{"type": "ping"}')
    assert await screen.closed() == 1008
    await screen.end()
    hub = parts_of(board.app).hub
    assert hub.resyncs == 0


async def test_ws_without_origin_is_refused_unless_allowed(board: Board, tmp_path: Path) -> None:
    assert await Screen(board, "kiosk", origin=None).open() == 4403
    allowing = await Board.open(tmp_path / "allowing", Pbx(), server={"allow_missing_origin": True})
    try:
        screen = Screen(allowing, "kiosk", origin=None)
        assert await screen.open() == "open"  # a monitoring probe, say; it still needs its token
        await screen.end()
        assert await Screen(allowing, "anonymous", origin=None).open() == 4401
    finally:
        await allowing.close()


# -- the audit log under a flood --------------------------------------------------------------


def audit_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def test_2000_refused_kiosk_attempts_write_one_row_and_stop_at_the_budget(
        board: Board, capsys: pytest.CaptureFixture[str]) -> None:
    db = Path(parts_of(board.app).settings.storage.path)
    before = audit_bytes(db)
    kiosk = board.browsers["kiosk"].http
    statuses = []
    for _ in range(2000):
        response = await kiosk.post(f"/api/calls/{CALL}/barge", params={"token": KIOSK_TOKEN}, json={})
        statuses.append(response.status_code)
    budget = ACTION_BUDGETS["principal"].limit
    assert statuses == [403] * budget + [429] * (2000 - budget)
    assert 0 < int(response.headers["retry-after"]) <= 60
    rows = await parts_of(board.app).audit.query(limit=10_000)
    assert [(r["username"], r["result"], r["count"]) for r in rows] == [("kiosk", "FORBIDDEN", budget)]
    grown = audit_bytes(db) - before
    with capsys.disabled():
        print(f"\n2,000 refused kiosk attempts: {len(rows)} row, count {rows[0]['count']}, "
              f"audit files (db, -wal, -shm) +{grown} bytes")
    assert grown < 1024 * 1024  # the -wal holds a page or so per fold, up to the budget; no more


async def test_the_address_budget_holds_across_people(board: Board) -> None:
    viewer, supervisor = board.browsers["viewer"], board.browsers["supervisor"]
    budget = ACTION_BUDGETS["principal"].limit
    for _ in range(budget):
        await viewer.http.post(f"/api/calls/{CALL}/barge", json={}, headers={"x-csrf-token": viewer.csrf})
    assert (await viewer.http.post(f"/api/calls/{CALL}/barge", json={},
                                   headers={"x-csrf-token": viewer.csrf})).status_code == 429
    # The same address (127.0.0.1) has room for another person until its own budget is spent.
    listen = await supervisor.http.post(f"/api/calls/{CALL}/listen", json={"ext": "999"},
                                        headers={"x-csrf-token": supervisor.csrf})
    assert listen.status_code == 200


async def test_the_audit_page_filters_by_result_and_shows_a_fold(board: Board) -> None:
    kiosk = board.browsers["kiosk"].http
    for _ in range(3):
        await kiosk.post(f"/api/calls/{CALL}/barge", params={"token": KIOSK_TOKEN}, json={})
    supervisor = board.browsers["supervisor"]
    await supervisor.http.post(f"/api/calls/{CALL}/listen", json={"ext": "999"},
                               headers={"x-csrf-token": supervisor.csrf})
    refused = await supervisor.http.get("/audit", params={"result": "refused", "lang": "en"})
    assert refused.status_code == 200
    assert refused.text.count("data-audit-row") == 1 and 'data-audit-count="3"' in refused.text
    assert '<option value="refused" selected>' in refused.text
    done = await supervisor.http.get("/audit", params={"result": "ok", "username": "supervisor@sim"})
    assert done.text.count("data-audit-row") == 1 and "data-audit-count" not in done.text


# -- headers ------------------------------------------------------------------------------------


async def test_pages_and_the_api_are_not_stored_static_files_may_be(board: Board) -> None:
    http = board.browsers["supervisor"].http
    for path in ("/", "/api/state", "/api/audit", "/audit", "/login", "/nope", "/healthz"):
        assert (await http.get(path)).headers.get("cache-control") == "no-store", path
    static = await http.get("/static/css/board.css")
    assert static.status_code == 200 and static.headers.get("cache-control") != "no-store"


async def test_csp_connects_only_to_the_boards_own_origin(board: Board) -> None:
    csp = (await board.browsers["viewer"].http.get("/")).headers["content-security-policy"]
    connect = next(d for d in csp.split("; ") if d.startswith("connect-src"))
    assert connect == "connect-src 'self' ws://testserver wss://testserver"
    assert "strict-transport-security" not in (await board.browsers["viewer"].http.get("/")).headers


async def test_hsts_when_public_url_is_https(tmp_path: Path) -> None:
    values = matrix_settings(tmp_path).with_values(server={"public_url": "https://board.example.com:8443"})
    http = httpx.AsyncClient(transport=httpx.MockTransport(pbx_handler))
    app = create_app(values, http_client=http, pbx=PbxClient("http://pbx.test", "k", http=http, timeout=2.0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="https://board.example.com:8443") as client:
        for path in ("/login", "/nope", "/static/css/board.css"):
            response = await client.get(path)
            assert response.headers["strict-transport-security"] == "max-age=31536000", path
        connect = next(d for d in response.headers["content-security-policy"].split("; ")
                       if d.startswith("connect-src"))
        assert connect == "connect-src 'self' ws://board.example.com:8443 wss://board.example.com:8443"
    await http.aclose()


def test_the_nginx_site_sends_hsts_once_on_every_answer() -> None:
    site = (Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "wallboard.conf").read_text()
    assert 'add_header Strict-Transport-Security "max-age=31536000" always;' in site
    assert "proxy_hide_header Strict-Transport-Security;" in site


# -- silent monitoring stays silent on the wall ---------------------------------------------------


async def test_kiosk_and_viewer_never_see_monitors_or_the_supervisors_name(board: Board) -> None:
    engine = parts_of(board.app).engine
    engine.publish(engine.live.apply_event(event("answered", CALL, ext="1001", at=now_ms())))
    engine.flush()
    screens = {role: Screen(board, role) for role in ("kiosk", "viewer", "supervisor")}
    for screen in screens.values():
        assert await screen.open() == "open"
    supervisor = board.browsers["supervisor"]
    response = await supervisor.http.post(f"/api/calls/{CALL}/listen", json={"ext": "999"},
                                          headers={"x-csrf-token": supervisor.csrf})
    assert response.status_code == 200
    seen = {"supervisor": await frames_until(screens["supervisor"], lambda f: "supervisor@sim" in f)}
    monitored_at = max(orjson.loads(f)["seq"] for f in seen["supervisor"] if "supervisor@sim" in f)
    for role in ("kiosk", "viewer"):
        seen[role] = await frames_until(screens[role], lambda f: orjson.loads(f).get("seq", -1) >= monitored_at)
    for role, screen in screens.items():
        browser = board.browsers[role]
        seen[role].append((await browser.http.get("/api/state", params=browser.params)).text)
        await screen.end()
    assert '"mode":"listen"' in "".join(seen["supervisor"])
    for role in ("kiosk", "viewer"):
        text = "".join(seen[role])
        assert "supervisor@sim" not in text and '"mode":"listen"' not in text, role
        assert '"monitors":[{' not in text.replace(" ", ""), role


async def frames_until(screen: Screen, done: Callable[[str], bool]) -> list[str]:
    """The text frames a screen is sent, up to the first that `done` accepts."""
    texts: list[str] = []
    while not texts or not done(texts[-1]):
        message = await asyncio.wait_for(screen.outbox.get(), 5)
        if message["type"] == "websocket.send" and message.get("text"):
            texts.append(message["text"])
    return texts


# -- files ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("left_there", [False, True])
def test_the_generated_webhook_secret_file_is_private(tmp_path: Path, left_there: bool) -> None:
    state = tmp_path / "var"
    if left_there:
        state.mkdir()
        (state / "webhook_secret").write_text("")
        (state / "webhook_secret").chmod(0o644)
    previous = os.umask(0)
    try:
        secret = load_secret("", state)
    finally:
        os.umask(previous)
    path = state / "webhook_secret"
    assert path.read_text() == secret and len(secret) >= 16
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_secret("", state) == secret


# -- a webhook from the future --------------------------------------------------------------------


# A PBX clock a minute fast keeps its calls; ten minutes ahead is not believed.
@pytest.mark.parametrize(("ahead_ms", "counted"), [(0, 1), (60_000, 1), (10 * 60_000, 0), (2 * 86_400_000, 0)])
async def test_a_cdr_webhook_far_in_the_future_is_not_counted_today(
        board: Board, ahead_ms: int, counted: int) -> None:
    fmt = PbxTime("Asia/Ho_Chi_Minh").format
    start = now_ms() + ahead_ms
    body = webhook_body("cdr", f"future-{ahead_ms}", extension="1001", status="ANSWERED",
                        time_started=fmt(start), time_answered=fmt(start), time_ended=fmt(start))
    hook = await board.browsers["anonymous"].http.post(f"/hooks/pbx/{HOOK_SECRET}", json=body)
    assert hook.status_code in (200, 202)
    state = (await board.browsers["supervisor"].http.get("/api/state")).json()
    assert sum(state["stats"]["calls_per_hour"]) == counted
