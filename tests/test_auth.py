from __future__ import annotations

import hmac
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from tests.factories import web_parts
from wallboard import principal as principal_module
from wallboard.pbx.errors import PbxError
from wallboard.principal import LOGIN_CSRF_COOKIE, SESSION_COOKIE, Auth, SessionStore
from wallboard.settings import Settings, defaults
from wallboard.tenancy import Parts
from wallboard.web import login as login_routes
from wallboard.web.context import PartsMiddleware, principal_of
from wallboard.web.guards import safe_next
from wallboard.web.pages import make_templates

PASSWORD = "s3cret-Pa55word"
LOGIN_TEMPLATE = "error={{ error or '' }}|csrf={{ csrf_token }}|next={{ next }}|user={{ username }}"


@dataclass
class Account:
    level: str
    username: str = ""


@dataclass
class FakePbx:
    levels: dict[str, str] = field(default_factory=lambda: {"boss": "admin", "eve": "user"})
    error: PbxError | None = None
    logins: list[str] = field(default_factory=list)

    async def login(self, username: str, password: str) -> Account:
        self.logins.append(username)
        if self.error is not None:
            raise self.error
        if password != PASSWORD or username not in self.levels:
            raise PbxError("INVALID_CREDENTIALS", "wrong username or password", status=401)
        return Account(level=self.levels[username], username=username)


@dataclass
class FakeHub:
    closed: list[str] = field(default_factory=list)

    def close_session(self, session_id: str) -> int:
        self.closed.append(session_id)
        return 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def whoami(request: Request) -> JSONResponse:
    p = principal_of(request)
    if p is None:
        return JSONResponse(None)
    return JSONResponse({"role": p.role, "name": p.name, "ext": p.ext, "masked": p.masked,
                         "session": p.session_id is not None})


async def me(client: Client) -> dict[str, Any]:
    """What this browser's page would know: its principal and CSRF token."""
    response = await client.get("/csrf")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def csrf_and_session(request: Request) -> JSONResponse:
    p = principal_of(request)
    assert p is not None
    return JSONResponse({"csrf": p.csrf_token, "session_id": p.session_id})


def make_settings(tmp_path: Path, **auth: Any) -> Settings:
    server = auth.pop("server", {})
    return defaults().with_values(
        auth={"kiosk_tokens": ["tv-token-one", "tv-token-two"], **auth},
        server=server, storage={"path": str(tmp_path / "audit.db")},
    )


def make_app(settings: Settings, tmp_path: Path, *, clock: Clock | None = None,
             pbx: FakePbx | None = None) -> Starlette:
    templates_dir = tmp_path / "templates"
    templates_dir.mkdir(exist_ok=True)
    (templates_dir / "login.html").write_text(LOGIN_TEMPLATE)
    auth = Auth(settings, clock=clock or Clock())
    parts = web_parts(settings, auth=auth, templates=make_templates(str(templates_dir)), pbx=pbx or FakePbx(),
                      hub=FakeHub())
    app = Starlette(
        routes=[Route("/login", login_routes.login_form, methods=["GET"]),
                Route("/login", login_routes.login_submit, methods=["POST"]),
                Route("/logout", login_routes.logout, methods=["POST"]),
                Route("/api/me/ext", login_routes.set_my_ext, methods=["POST"]),
                Route("/whoami", whoami), Route("/csrf", csrf_and_session),
                Route("/api/state", whoami),
                Route("/kiosk", whoami)],
        middleware=[Middleware(PartsMiddleware, parts=parts)],
    )
    app.state.parts = parts
    return app


class Client(httpx.AsyncClient):
    """An HTTP client talking to `app` in-process, with the app at hand for assertions."""

    def __init__(self, app: Starlette, base_url: str = "http://testserver") -> None:
        super().__init__(transport=httpx.ASGITransport(app=app), base_url=base_url)
        self.app = app

    @property
    def parts(self) -> Any:
        parts: Parts = self.app.state.parts
        return parts


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with Client(make_app(make_settings(tmp_path), tmp_path)) as c:
        yield c


async def form_token(client: Client, path: str = "/login") -> str:
    page = await client.get(path)
    assert page.status_code == 200
    match = re.search(r"csrf=([^|]+)\|", page.text)
    assert match
    return match.group(1)


async def login(client: Client, username: str = "boss", password: str = PASSWORD,
          **extra: str) -> Any:
    token = await form_token(client)
    return await client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": token, **extra})


async def test_no_cookie_is_anonymous(client: Client) -> None:
    assert (await client.get("/whoami")).json() is None


async def test_supervisor_login_sets_a_session_and_redirects_to_next(client: Client) -> None:
    response = await login(client, ext="199", next="/?kiosk=1")
    assert response.status_code == 303
    assert response.headers["location"] == "/?kiosk=1"
    me = (await client.get("/whoami")).json()
    assert me == {"role": "supervisor", "name": "boss", "ext": "199", "masked": False,
                  "session": True}


async def test_session_cookie_flags(client: Client) -> None:
    response = await login(client)
    cookie = next(v for v in response.headers.get_list("set-cookie")
                  if v.startswith(SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie or "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    # The cookie holds a signed id and nothing about the person.
    assert "boss" not in cookie


async def test_cookie_is_secure_when_public_url_is_https(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, server={"public_url": "https://board.example.com"})
    async with Client(make_app(settings, tmp_path), "https://testserver") as c:
        response = await login(c)
    cookie = next(v for v in response.headers.get_list("set-cookie")
                  if v.startswith(SESSION_COOKIE + "="))
    assert "Secure" in cookie


async def test_non_admin_level_is_a_viewer_with_masked_numbers(client: Client) -> None:
    assert (await login(client, "eve")).status_code == 303
    assert (await client.get("/whoami")).json()["role"] == "viewer"
    assert (await client.get("/whoami")).json()["masked"] is True


async def test_wrong_password_is_refused_with_plain_words(client: Client) -> None:
    client.cookies.set("lang", "en")
    response = await login(client, password="nope")
    assert response.status_code == 401
    assert "error=Wrong username or password." in response.text
    assert (await client.get("/whoami")).json() is None


async def test_unreachable_pbx_is_a_clear_message_not_a_500(tmp_path: Path) -> None:
    pbx = FakePbx(error=PbxError("UNREACHABLE", "connection refused"))
    async with Client(make_app(make_settings(tmp_path), tmp_path, pbx=pbx)) as c:
        c.cookies.set("lang", "en")
        response = await login(c, "boss")
    assert response.status_code == 503
    assert "Cannot reach the PBX" in response.text


async def test_login_page_speaks_the_screens_language(client: Client) -> None:
    client.cookies.set("lang", "vi")
    response = await login(client, password="nope")
    assert "Sai tên đăng nhập hoặc mật khẩu." in response.text


async def test_login_without_the_form_token_is_refused(client: Client) -> None:
    await client.get("/login")
    response = await client.post("/login", data={"username": "boss", "password": PASSWORD},
                           follow_redirects=False)
    assert response.status_code == 403
    assert client.parts.pbx.logins == []


async def test_login_token_must_match_this_browsers_cookie(client: Client) -> None:
    token = await form_token(client)
    client.cookies.set(LOGIN_CSRF_COOKIE, "planted-by-someone-else", path="/login")
    response = await client.post("/login", data={"username": "boss", "password": PASSWORD,
                                           "csrf_token": token})
    assert response.status_code == 403


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil",
                                    "javascript:alert(1)", "", "/\x00x"])
async def test_next_never_leaves_the_site(target: str) -> None:
    assert safe_next(target) == "/"


async def test_next_keeps_local_paths() -> None:
    assert safe_next("/audit?date=2025-01-01") == "/audit?date=2025-01-01"


async def test_open_redirect_through_login_is_refused(client: Client) -> None:
    response = await login(client, next="//evil.example/")
    assert response.headers["location"] == "/"


async def test_bad_ext_on_login_is_refused(client: Client) -> None:
    response = await login(client, ext="19x")
    assert response.status_code == 400
    assert (await client.get("/whoami")).json() is None


async def test_login_logs_one_line_without_the_password(client: Client,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="wallboard.auth"):
        await login(client, password="wrong-" + PASSWORD)
        await login(client)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "login refused for boss" in text
    assert "login ok: boss as supervisor" in text
    assert PASSWORD not in text


async def test_login_attempts_are_rate_limited(client: Client) -> None:
    statuses = [(await login(client, password="nope")).status_code for _ in range(11)]
    assert statuses == [401] * 10 + [429]
    assert len(client.parts.pbx.logins) == 10


async def test_tampered_session_cookie_is_anonymous(client: Client) -> None:
    await login(client)
    value = client.cookies[SESSION_COOKIE]
    client.cookies.set(SESSION_COOKIE, value[:-2] + ("AA" if value[-2:] != "AA" else "BB"))
    assert (await client.get("/whoami")).json() is None


async def test_session_ends_after_idle_timeout(tmp_path: Path) -> None:
    clock = Clock()
    settings = make_settings(tmp_path, session_idle_minutes=10)
    async with Client(make_app(settings, tmp_path, clock=clock)) as c:
        await login(c)
        clock.now += 9 * 60
        assert (await c.get("/whoami")).json()["role"] == "supervisor"
        clock.now += 9 * 60  # idle is counted from the last use, not from login
        assert (await c.get("/whoami")).json()["role"] == "supervisor"
        clock.now += 10 * 60 + 1
        assert (await c.get("/whoami")).json() is None


async def test_session_store_forgets_idle_sessions_when_creating() -> None:
    clock = Clock()
    store = SessionStore(60, clock=clock)
    store.create("a", "viewer", None)
    clock.now += 61
    store.create("b", "viewer", None)
    assert len(store) == 1


async def test_logout_ends_the_session_and_closes_its_sockets(client: Client) -> None:
    await login(client)
    page = await me(client)
    sessions = client.parts.auth.sessions
    assert len(sessions) == 1
    response = await client.post("/logout", data={"csrf_token": page["csrf"]})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert client.parts.hub.closed == [page["session_id"]]
    assert (await client.get("/whoami")).json() is None
    assert len(sessions) == 0


async def test_logout_without_csrf_is_refused(client: Client) -> None:
    await login(client)
    response = await client.post("/logout")
    assert response.status_code == 403
    assert (await client.get("/whoami")).json()["role"] == "supervisor"


async def test_old_cookie_is_useless_after_logout(client: Client) -> None:
    await login(client)
    old = client.cookies[SESSION_COOKIE]
    await client.post("/logout", headers={"X-CSRF-Token": (await me(client))["csrf"]})
    client.cookies.set(SESSION_COOKIE, old)
    assert (await client.get("/whoami")).json() is None


async def test_mode_none_makes_everyone_the_demo_supervisor(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, mode="none", demo_ext="998")
    async with Client(make_app(settings, tmp_path)) as c:
        assert (await c.get("/whoami")).json() == {"role": "supervisor", "name": "demo", "ext": "998",
                                           "masked": False, "session": False}
    assert await principal_on_websocket(Auth(settings), "/ws") == "supervisor"


@pytest.mark.parametrize("path", ["/kiosk", "/api/state"])
async def test_kiosk_token_gives_a_kiosk(client: Client, path: str) -> None:
    response = await client.get(path, params={"token": "tv-token-two"})
    assert response.json() == {"role": "kiosk", "name": "kiosk", "ext": None, "masked": True,
                               "session": False}


async def principal_on_websocket(auth: Auth, path: str, query: bytes = b"") -> str | None:
    seen: list[Any] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["principal"])

    async def nothing() -> Message:
        raise AssertionError("not reached")

    async def ignore(message: Message) -> None:
        raise AssertionError("not reached")

    scope = {"type": "websocket", "path": path, "query_string": query, "headers": []}
    await PartsMiddleware(inner, parts=web_parts(auth.settings, auth=auth))(scope, nothing, ignore)
    return seen[0].role if seen[0] else None


async def test_kiosk_token_on_websocket(tmp_path: Path) -> None:
    auth = Auth(make_settings(tmp_path))
    assert await principal_on_websocket(auth, "/ws", b"token=tv-token-one") == "kiosk"
    assert await principal_on_websocket(auth, "/ws", b"token=wrong") is None
    assert await principal_on_websocket(auth, "/ws") is None


async def test_kiosk_token_is_ignored_on_other_pages(client: Client) -> None:
    assert (await client.get("/whoami", params={"token": "tv-token-one"})).json() is None


@pytest.mark.parametrize("token", ["tv-token-on", "tv-token-onee", "TV-TOKEN-ONE", ""])
async def test_wrong_kiosk_token_is_anonymous(client: Client, token: str) -> None:
    assert (await client.get("/kiosk", params={"token": token})).json() is None


async def test_empty_configured_token_never_matches(tmp_path: Path) -> None:
    auth = Auth(make_settings(tmp_path, kiosk_tokens=["", "real"]))
    assert auth.kiosk_token_valid("") is False
    assert auth.kiosk_token_valid("real") is True


async def test_kiosk_tokens_compared_in_constant_time_against_all(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(principal_module.hmac, "compare_digest", spy)
    auth = Auth(make_settings(tmp_path, kiosk_tokens=["first", "second", "third"]))
    assert auth.kiosk_token_valid("first") is True
    # Even after the first matched, every token was compared.
    assert [b for _, b in calls] == [b"first", b"second", b"third"]


async def test_set_my_ext(client: Client) -> None:
    await login(client, ext="199")
    headers = {"X-CSRF-Token": (await me(client))["csrf"]}
    response = await client.post("/api/me/ext", json={"ext": "1005"}, headers=headers)
    assert response.json() == {"ok": True, "ext": "1005"}
    assert (await client.get("/whoami")).json()["ext"] == "1005"
    assert (await client.post("/api/me/ext", json={"ext": "10 05"}, headers=headers)).status_code == 400
    assert (await client.post("/api/me/ext", json={"ext": "1006"})).status_code == 403
    assert (await client.get("/whoami")).json()["ext"] == "1005"


async def test_set_my_ext_is_for_supervisors(client: Client) -> None:
    assert (await client.post("/api/me/ext", json={"ext": "1005"})).status_code == 401
    await login(client, "eve")
    response = await client.post("/api/me/ext", json={"ext": "1005"},
                           headers={"X-CSRF-Token": (await me(client))["csrf"]})
    assert response.status_code == 403
    assert response.json()["error"] == "FORBIDDEN"


async def test_set_my_ext_in_demo_mode(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, mode="none")
    app = make_app(settings, tmp_path)
    async with Client(app) as c:
        csrf = (await me(c))["csrf"]
        assert (await c.post("/api/me/ext", json={"ext": "1002"},
                      headers={"X-CSRF-Token": csrf})).status_code == 200
        assert (await c.get("/whoami")).json()["ext"] == "1002"

