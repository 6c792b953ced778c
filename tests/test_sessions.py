"""Sessions that stay true after the login (sessions.py, principal.py), through the real
app: an absolute lifetime beside the idle timeout; every socket of a session that ends, in
any way, closed within about a second; the account asked again of the PBX (demoted: a
viewer; refused: logged out); no session fixation; login budgets with Retry-After."""

from __future__ import annotations

import asyncio
import json
import pickle
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import Message

from tests.test_hardening import Board
from tests.test_role_matrix import ACCOUNTS, CALL, KIOSK_TOKEN, PUBLIC_URL, pbx_handler
from wallboard.app import parts_of
from wallboard.principal import Credential, SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Pbx:
    """The matrix's PBX with accounts a test can demote, re-password or take down."""

    def __init__(self) -> None:
        self.accounts = {name: list(account) for name, account in ACCOUNTS.items()}
        self.down = False
        self.logins = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path != "/v1/auth":
            return pbx_handler(request)
        self.logins += 1
        if self.down:
            return httpx.Response(503, json={"status": "fail", "error": "DOWN"})
        body = json.loads(request.content)
        account = self.accounts.get(body.get("username"))
        if account is None or body.get("password") != account[0]:
            return httpx.Response(401, json={"status": "fail", "error": "INVALID_CREDENTIALS"})
        return httpx.Response(200, json={"data": {
            "user_uuid": "u", "domain_uuid": "d", "username": body["username"],
            "api_key": "account-api-key", "user_enabled": "true", "level": account[1]}})


class Screen:
    """One /ws connection held open through the app's ASGI interface."""

    def __init__(self, board: Board, role: str, *, origin: str | None = PUBLIC_URL,
                 client: tuple[str, int] = ("127.0.0.1", 5000)) -> None:
        browser = board.browsers[role]
        cookie = "; ".join(f"{k}={v}" for k, v in browser.http.cookies.items())
        headers = [(b"host", b"testserver"), *([(b"origin", origin.encode())] if origin else []),
                   *([(b"cookie", cookie.encode())] if cookie else [])]
        self.scope = {
            "type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws", "path": "/ws",
            "raw_path": b"/ws", "root_path": "",
            "query_string": f"token={KIOSK_TOKEN}".encode() if role == "kiosk" else b"",
            "headers": headers, "client": client, "server": ("testserver", 80), "subprotocols": [],
        }
        self.app = board.app
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.outbox: asyncio.Queue[Message] = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None
        self.accepted = False

    async def open(self) -> int | str:
        """'open' once the snapshot came, else the close code."""
        await self.inbox.put({"type": "websocket.connect"})
        self.task = asyncio.ensure_future(self.app(self.scope, self.inbox.get, self.outbox.put))
        first = await asyncio.wait_for(self.outbox.get(), 5)
        if first["type"] == "websocket.accept":
            self.accepted = True
            first = await asyncio.wait_for(self.outbox.get(), 5)
        if first["type"] == "websocket.close":
            return int(first.get("code", 1000))
        assert json.loads(first["text"])["type"] == "snapshot"
        return "open"

    async def say(self, text: str) -> None:
        await self.inbox.put({"type": "websocket.receive", "text": text})

    async def closed(self) -> int:
        """The close code, waiting for it (5 s at most) past any frames."""
        async with asyncio.timeout(5):
            while True:
                message = await self.outbox.get()
                if message["type"] == "websocket.close":
                    return int(message.get("code", 1000))

    async def end(self) -> None:
        await self.inbox.put({"type": "websocket.disconnect", "code": 1000})
        if self.task is not None:
            await asyncio.wait_for(self.task, 5)


@pytest.fixture
async def pbx() -> Pbx:
    return Pbx()


@pytest.fixture
async def board(tmp_path: Path, pbx: Pbx) -> AsyncIterator[Board]:
    opened = await Board.open(tmp_path, pbx)
    try:
        yield opened
    finally:
        await opened.close()


def session_of(board: Board, role: str) -> Any:
    auth = parts_of(board.app).auth
    cookie = board.browsers[role].http.cookies["wb_session"]
    session_id = auth._signer.unsign(cookie).decode()
    return auth.sessions.peek(session_id)


async def state_status(board: Board, role: str) -> int:
    return (await board.browsers[role].http.get("/api/state")).status_code


# -- the store -----------------------------------------------------------------------------


def test_a_session_ends_at_its_lifetime_however_busy() -> None:
    clock = Clock()
    store = SessionStore(600, clock=clock, max_age=3600)
    session = store.create("boss", "supervisor", None)
    for _ in range(5):
        clock.now += 599  # used within every idle window...
        assert store.get(session.id) is session
    clock.now += 3600 - 5 * 599
    assert store.get(session.id) is None  # ...and still over at its lifetime
    other = store.create("anna", "viewer", None)
    clock.now += 3601
    assert [s.username for s in store.purge()] == ["anna"] and len(store) == 0
    assert store.get(other.id) is None


async def test_the_lifetime_comes_from_settings(board: Board) -> None:
    sessions = parts_of(board.app).auth.sessions
    assert sessions.max_age == 12 * 3600 and sessions.idle_seconds == 480 * 60


def test_a_credential_never_shows_its_password() -> None:
    kept = Credential("hunter2-secret")
    session = SessionStore(60).create("boss", "supervisor", None, credential=kept)
    assert "hunter2" not in repr(kept) + str(kept) + repr(session)
    with pytest.raises(TypeError):
        pickle.dumps(kept)
    assert kept.reveal() == "hunter2-secret"


# -- every way a session ends closes its sockets ---------------------------------------------


async def end_by_logout(board: Board, pbx: Pbx) -> None:
    browser = board.browsers["supervisor"]
    response = await browser.http.post("/logout", headers={"x-csrf-token": browser.csrf})
    assert response.status_code == 303


async def end_by_idling(board: Board, pbx: Pbx) -> None:
    parts_of(board.app).auth.sessions.idle_seconds = 0.0


async def end_by_lifetime(board: Board, pbx: Pbx) -> None:
    parts_of(board.app).auth.sessions.max_age = 0.0


async def end_by_a_refused_recheck(board: Board, pbx: Pbx) -> None:
    pbx.accounts["supervisor@sim"][0] = "changed-on-the-pbx"
    session_of(board, "supervisor").checked = -1e9


async def end_by_demotion(board: Board, pbx: Pbx) -> None:
    pbx.accounts["supervisor@sim"][1] = "user"
    session_of(board, "supervisor").checked = -1e9


async def login_form_token(board: Board) -> tuple[str, str]:
    """(the login CSRF cookie, the form's token), from a browser with no session yet."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=board.app), base_url=PUBLIC_URL)
    try:
        form = await client.get("/login")
        return form.cookies["wb_login_csrf"], form.text.split('name="csrf_token" value="')[1].split('"')[0]
    finally:
        await client.aclose()


async def end_by_a_new_login(board: Board, pbx: Pbx) -> None:
    cookie, token = await login_form_token(board)
    browser = board.browsers["supervisor"]
    browser.http.cookies.set("wb_login_csrf", cookie)
    response = await browser.http.post("/login", data={
        "username": "supervisor@sim", "password": ACCOUNTS["supervisor@sim"][0], "csrf_token": token})
    assert response.status_code == 303


ENDINGS = [end_by_logout, end_by_idling, end_by_lifetime, end_by_a_refused_recheck, end_by_demotion,
           end_by_a_new_login]


@pytest.mark.parametrize("end", ENDINGS, ids=[f.__name__ for f in ENDINGS])
async def test_a_session_that_ends_closes_its_sockets_within_seconds(
        board: Board, pbx: Pbx, end: Any, caplog: pytest.LogCaptureFixture) -> None:
    screens = [Screen(board, "supervisor") for _ in range(3)]
    assert [await s.open() for s in screens] == ["open"] * 3
    kiosk = Screen(board, "kiosk")
    assert await kiosk.open() == "open"
    started = time.monotonic()
    await end(board, pbx)
    codes = [await s.closed() for s in screens]
    took = time.monotonic() - started
    assert codes == [4000] * 3
    assert took < 4.0, f"{end.__name__}: {took:.2f} s"  # a sweep a second, with room for a busy box
    print(f"{end.__name__}: sockets closed {took:.2f} s after the session ended")
    kiosk_got = [kiosk.outbox.get_nowait() for _ in range(kiosk.outbox.qsize())]
    assert all(m["type"] != "websocket.close" for m in kiosk_got)  # another principal: open
    for screen in [*screens, kiosk]:
        await screen.end()
    assert "hunter2" not in caplog.text and ACCOUNTS["supervisor@sim"][0] not in caplog.text


async def test_a_demoted_supervisor_is_a_viewer_at_once_and_at_the_next_action(board: Board, pbx: Pbx) -> None:
    browser = board.browsers["supervisor"]
    pbx.accounts["supervisor@sim"][1] = "user"
    session_of(board, "supervisor").checked = -1e9  # last asked longer ago than recheck_minutes
    before = pbx.logins
    response = await browser.http.post(f"/api/calls/{CALL}/barge", json={"ext": "999"},
                                       headers={"x-csrf-token": browser.csrf})
    assert response.status_code == 403 and response.json()["error"] == "FORBIDDEN"
    assert pbx.logins == before + 1  # asked once, before the action
    assert session_of(board, "supervisor").role == "viewer"
    assert (await browser.http.get("/api/audit")).status_code == 403
    [row] = await parts_of(board.app).audit.query(result="refused")
    assert (row["username"], row["role"], row["action"]) == ("supervisor@sim", "viewer", "barge")
    # Asked again only when the last check is old: the next attempt does not ask.
    await browser.http.post(f"/api/calls/{CALL}/barge", json={"ext": "999"},
                            headers={"x-csrf-token": browser.csrf})
    assert pbx.logins == before + 1


async def test_a_refused_account_is_logged_out_at_its_next_action(board: Board, pbx: Pbx) -> None:
    browser = board.browsers["supervisor"]
    del pbx.accounts["supervisor@sim"]
    session_of(board, "supervisor").checked = -1e9
    response = await browser.http.post(f"/api/calls/{CALL}/listen", json={"ext": "999"},
                                       headers={"x-csrf-token": browser.csrf})
    assert response.status_code == 401
    assert await state_status(board, "supervisor") == 401
    assert (await browser.http.get("/")).status_code == 303


async def test_a_pbx_that_cannot_be_asked_refuses_the_action_and_keeps_the_session(
        board: Board, pbx: Pbx) -> None:
    browser = board.browsers["supervisor"]
    pbx.down = True
    session_of(board, "supervisor").checked = -1e9
    response = await browser.http.post(f"/api/calls/{CALL}/listen", json={"ext": "999"},
                                       headers={"x-csrf-token": browser.csrf})
    assert response.status_code == 503 and response.json()["error"] == "UNREACHABLE"
    assert await state_status(board, "supervisor") == 200
    pbx.down = False
    response = await browser.http.post(f"/api/calls/{CALL}/listen", json={"ext": "999"},
                                       headers={"x-csrf-token": browser.csrf})
    assert response.status_code == 200


async def test_the_periodic_recheck_asks_every_recheck_minutes_and_promotes_too(board: Board, pbx: Pbx) -> None:
    keeper_asked = pbx.logins
    session = session_of(board, "viewer")
    pbx.accounts["viewer@sim"][1] = "admin"
    session.checked -= 10 * 60  # recheck_minutes ago
    screen = Screen(board, "viewer")
    assert await screen.open() == "open"
    assert await screen.closed() == 4000  # the audience changed: back through the login page
    assert pbx.logins == keeper_asked + 1 and session.role == "supervisor"
    await screen.end()


async def test_a_new_login_ends_the_session_cookie_the_browser_brought(board: Board) -> None:
    attacker = board.browsers["viewer"]  # logged in as viewer@sim: its cookie is planted
    planted = attacker.http.cookies["wb_session"]
    cookie, token = await login_form_token(board)
    victim = httpx.AsyncClient(transport=httpx.ASGITransport(app=board.app), base_url=PUBLIC_URL)
    try:
        victim.cookies.set("wb_login_csrf", cookie)
        victim.cookies.set("wb_session", planted)  # planted by another site, or a shared machine
        response = await victim.post("/login", data={
            "username": "supervisor@sim", "password": ACCOUNTS["supervisor@sim"][0], "csrf_token": token})
        assert response.status_code == 303
        assert response.cookies["wb_session"] != planted
        assert (await victim.get("/api/audit")).status_code == 200
        assert await state_status(board, "viewer") == 401  # the planted cookie is dead
    finally:
        await victim.aclose()


async def test_good_logins_from_one_address_are_not_held_up(board: Board) -> None:
    for _ in range(40):  # more than the address's budget of attempts
        response = await login_from(board, "192.0.2.50", "viewer@sim", ACCOUNTS["viewer@sim"][0])
        assert response.status_code == 303


# -- login budgets ----------------------------------------------------------------------------


async def login_from(board: Board, address: str, username: str, password: str = "wrong") -> httpx.Response:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=board.app, client=(address, 1234)),
                               base_url=PUBLIC_URL)
    try:
        form = await client.get("/login")
        token = form.text.split('name="csrf_token" value="')[1].split('"')[0]
        return await client.post("/login", data={"username": username, "password": password,
                                                 "csrf_token": token})
    finally:
        await client.aclose()


async def test_password_spraying_from_one_address_is_limited_with_retry_after(board: Board) -> None:
    statuses = [(await login_from(board, "203.0.113.5", f"user{n}@sim")).status_code for n in range(30)]
    assert statuses == [401] * 30
    refused = await login_from(board, "203.0.113.5", "supervisor@sim", ACCOUNTS["supervisor@sim"][0])
    assert refused.status_code == 429
    seconds = int(refused.headers["retry-after"])
    assert 0 < seconds <= 300
    assert f"{seconds}" in refused.text  # "try again in N s", in the page's language
    assert (await login_from(board, "203.0.113.6", "user0@sim")).status_code == 401  # another address


async def test_one_username_guessed_from_many_addresses_is_limited(board: Board) -> None:
    statuses = [(await login_from(board, f"198.51.100.{n}", "supervisor@sim")).status_code for n in range(20)]
    assert statuses == [401] * 20
    refused = await login_from(board, "198.51.100.200", "supervisor@sim", ACCOUNTS["supervisor@sim"][0])
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
