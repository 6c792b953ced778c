"""Issue 12 from outside: what any client can send over HTTP, as every role, through the
real `create_app`. No route answers 500, and every answer, errors included, carries the
security headers.

The property test drives one app with its own event loop (hypothesis calls a plain
function per example); the roles' sessions come from real logins, as in
test_role_matrix.py, and a session the examples log out is logged in again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.responses import Response

from tests.test_role_matrix import (
    ACCOUNTS,
    CALL,
    HOOK_SECRET,
    KIOSK_TOKEN,
    PUBLIC_URL,
    ROLES,
    Browser,
    matrix_settings,
    pbx_handler,
)
from wallboard.app import create_app, parts_of
from wallboard.pbx.client import PbxClient

SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy",
                    "x-frame-options", "permissions-policy")
LOGINS = {"viewer": "viewer@sim", "supervisor": "supervisor@sim"}
FUZZ_CLIENT = ("192.0.2.7", 40000)  # not the browsers' address: its junk logins spend its own budget
CSRF = "THE-ROLES-CSRF-TOKEN"  # replaced by the real one when sent (URL-safe: forms too)
FORM_TYPE = {"content-type": "application/x-www-form-urlencoded"}


class Board:
    """The real app, its lifespan entered, and per role a logged-in browser and a client
    that shares its cookies but comes from another address."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.browsers = {role: Browser(app, role) for role in ROLES}
        self.fuzzers: dict[str, httpx.AsyncClient] = {}
        self._stack = contextlib.AsyncExitStack()

    @classmethod
    async def open(cls, tmp_path: Path, handler: Callable[[httpx.Request], httpx.Response] = pbx_handler,
                   **sections: dict[str, Any]) -> Board:
        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        values = matrix_settings(tmp_path)
        if sections:
            values = values.with_values(**sections)
        pbx = PbxClient(values.pbx.base_url, values.pbx.api_key, http=http, timeout=2.0)
        board = cls(create_app(values, http_client=http, pbx=pbx))
        board._stack.push_async_callback(http.aclose)
        await board._stack.enter_async_context(board.app.router.lifespan_context(board.app))
        for role in ROLES:
            await board.login(role)
        return board

    async def login(self, role: str, *, form: bool = True) -> None:
        browser = self.browsers[role]
        if role in LOGINS and form:
            browser.http.cookies.clear()
            await browser.login(LOGINS[role])
        old = self.fuzzers.pop(role, None)
        if old is not None:
            await old.aclose()
        self.fuzzers[role] = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app, raise_app_exceptions=False, client=FUZZ_CLIENT),
            base_url=PUBLIC_URL, cookies=browser.http.cookies)

    async def close(self) -> None:
        for client in [*self.fuzzers.values(), *(b.http for b in self.browsers.values())]:
            await client.aclose()
        await self._stack.aclose()

    async def send(self, request: FuzzRequest) -> httpx.Response:
        csrf = self.browsers[request.role].csrf or "no-token"
        headers = {k: v.replace(CSRF, csrf) for k, v in request.headers.items()}
        body = request.body.replace(CSRF.encode(), csrf.encode()) if request.body is not None else None
        params: list[tuple[str, str | int | float | bool | None]] = list(request.query)
        if request.role == "kiosk":
            params.append(("token", KIOSK_TOKEN))
        response = await self.fuzzers[request.role].request(
            request.method, request.path, params=params, headers=headers, content=body)
        if request.path == "/logout" and request.role in LOGINS:
            await self.resume(request.role)  # the next example is still this role
        return response

    async def resume(self, role: str) -> None:
        """A new session for the role without the login form, whose budgets the examples
        spend (they log out hundreds of times)."""
        auth = parts_of(self.app).auth
        session = auth.sessions.create(LOGINS[role], "supervisor" if role == "supervisor" else "viewer",
                                       "999")
        cookie = Response()
        auth.set_session_cookie(cookie, session)
        name, _, value = cookie.headers["set-cookie"].split(";", 1)[0].partition("=")
        browser = self.browsers[role]
        browser.http.cookies.clear()
        browser.http.cookies.set(name, value)
        browser.csrf = session.csrf_token
        await self.login(role, form=False)


@dataclass(frozen=True)
class FuzzRequest:
    role: str
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    body: bytes | None


ACTIONS = ["listen", "whisper", "barge", "transfer", "call", ""]
KNOWN_PATHS = [
    "/", "/kiosk", "/login", "/logout", "/api/state", "/api/click2call", "/api/me/ext",
    "/api/audit", "/audit", "/healthz", "/readyz", "/metrics", "/ws", "/static/js/socket.js",
    "/static/css/board.css", "/static/nope.js", f"/hooks/pbx/{HOOK_SECRET}",
    *(f"/api/calls/{CALL}/{action}" for action in ACTIONS),
]
SEGMENT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12).map(
    lambda s: quote(s, safe=""))
PATHS = st.one_of(
    st.sampled_from(KNOWN_PATHS),
    st.builds(lambda c, a: f"/api/calls/{c}/{a}", st.sampled_from([CALL, "x", "a" * 300]) | SEGMENT,
              st.sampled_from(ACTIONS) | SEGMENT),
    st.builds(lambda s: f"/hooks/pbx/{s}", SEGMENT),
    # (an HTTP client cannot send a path that starts with "//": it reads as a host)
    st.lists(SEGMENT, max_size=4).map(lambda parts: "/" + "/".join(parts).lstrip("/")),
)
ODD_VALUES = st.sampled_from([
    "9999-12-31", "0001-01-01", "2025-02-30", "2025-11-28", "-1", "0", "1", "1000", "1001",
    "99999999999999999999999", "1e9", "nan", "", "ok", "refused", "failed", "USER_BUSY",
    "x' OR 1=1 --", "\x00", "é", "supervisor@sim", "/", "//evil.example", "vi", "en",
])
QUERY = st.lists(st.tuples(
    st.sampled_from(["date", "username", "result", "limit", "next", "lang", "kiosk", "team",
                     "hotline", "epoch", "seq", "token", "ext"]) | st.text(max_size=8),
    ODD_VALUES | st.text(max_size=20),
), max_size=4).map(tuple)
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
CONTENT_TYPES = st.sampled_from([
    "application/json", "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz",
    "multipart/form-data", "text/plain", "application/json; charset=latin-1", "garbage/",
])
HEADERS = st.fixed_dictionaries({}, optional={
    "content-type": CONTENT_TYPES | HEADER_TEXT,
    "origin": st.sampled_from([PUBLIC_URL, "null", "http://evil.example"]) | HEADER_TEXT,
    "accept-language": st.sampled_from(["vi", "en-US,en;q=0.5"]) | HEADER_TEXT,
    "accept": st.sampled_from(["application/json", "text/html", "*/*"]) | HEADER_TEXT,
})
JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
                | st.floats(allow_nan=False) | st.text(max_size=20) | ODD_VALUES)
JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
    st.sampled_from(["ext", "phone", "csrf_token", "state", "call_id", "type"]) | st.text(max_size=5),
    inner, max_size=3), max_leaves=8)
FORM = st.tuples(st.sampled_from([[("csrf_token", CSRF)], [("csrf_token", CSRF)], []]), st.lists(st.tuples(
    st.sampled_from(["csrf_token", "ext", "phone", "username", "password", "next"]),
    st.sampled_from([CSRF, "999", "0899123456", "supervisor@sim"]) | st.text(max_size=20),
), max_size=3)).map(lambda pairs: urlencode(pairs[0] + pairs[1]).encode())
# A body, and the content type that usually goes with it (HEADERS may say otherwise).
BODIES = st.one_of(
    st.tuples(st.none(), st.none()),
    st.tuples(JSON.map(orjson.dumps), st.just("application/json")),
    st.tuples(FORM, st.just("application/x-www-form-urlencoded")),
    st.tuples(st.binary(max_size=64), st.none() | CONTENT_TYPES),
    st.tuples(st.just(b"x" * 70_000), st.none() | CONTENT_TYPES),
)


def _request(role: str, method: str, path: str, query: tuple[tuple[str, str], ...],
             headers: dict[str, str], body: tuple[bytes | None, str | None],
             csrf_header: str | None) -> FuzzRequest:
    content, content_type = body
    if content_type is not None:
        headers = {"content-type": content_type, **headers}
    if csrf_header is not None:
        headers = {"x-csrf-token": csrf_header, **headers}
    return FuzzRequest(role, method, path, query, headers, content)


# Half the requests are a route of SPEC section 4 with its own method (so the odd headers
# and bodies reach the handlers), half anything at all.
ROUTES = [("GET", "/"), ("GET", "/kiosk"), ("GET", "/login"), ("POST", "/login"), ("POST", "/logout"),
          ("GET", "/api/state"), ("POST", "/api/click2call"), ("POST", "/api/me/ext"),
          ("GET", "/api/audit"), ("GET", "/audit"), ("POST", f"/hooks/pbx/{HOOK_SECRET}"),
          ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
          *(("POST", f"/api/calls/{CALL}/{action}") for action in ACTIONS[:4])]
METHOD_AND_PATH = st.sampled_from(ROUTES) | st.tuples(
    st.sampled_from(["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"]), PATHS)
REQUESTS = st.builds(
    lambda role, method_path, query, headers, body, csrf: _request(
        role, method_path[0], method_path[1], query, headers, body, csrf),
    st.sampled_from(ROLES), METHOD_AND_PATH, QUERY, HEADERS, BODIES,
    st.sampled_from([CSRF, None, None, "wrong"]) | HEADER_TEXT)


@pytest.fixture
def board(tmp_path: Path) -> Iterator[tuple[asyncio.AbstractEventLoop, Board]]:
    loop = asyncio.new_event_loop()
    try:
        opened = loop.run_until_complete(Board.open(tmp_path))
        try:
            yield loop, opened
        finally:
            loop.run_until_complete(opened.close())
    finally:
        loop.close()


def test_no_route_answers_500_and_every_answer_carries_the_headers(
        board: tuple[asyncio.AbstractEventLoop, Board]) -> None:
    loop, app = board

    @settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(REQUESTS)
    # What was found before, kept as examples: a CSRF form field on a JSON route (the
    # body read twice: "Stream consumed"), and the last day of the calendar.
    @example(FuzzRequest("supervisor", "POST", "/api/me/ext", (), FORM_TYPE, b"csrf_token=" + CSRF.encode()))
    @example(FuzzRequest("supervisor", "POST", f"/api/calls/{CALL}/listen", (), FORM_TYPE,
                         b"ext=999&csrf_token=" + CSRF.encode()))
    @example(FuzzRequest("supervisor", "GET", "/api/audit", (("date", "9999-12-31"),), {}, None))
    def check(request: FuzzRequest) -> None:
        response = loop.run_until_complete(app.send(request))
        assert response.status_code != 500, response.text[:200]
        assert response.status_code < 500 or response.status_code == 503
        assert [h for h in SECURITY_HEADERS if h not in response.headers] == []
        if not response.url.path.startswith("/static/"):
            assert response.headers.get("cache-control") == "no-store"

    check()


# -- the known failures the property test finds, one by one ----------------------------


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Board]:
    opened = await Board.open(tmp_path)
    try:
        yield opened
    finally:
        await opened.close()


def supervisor_request(method: str, url: str, *, headers: dict[str, str] | None = None,
                       body: bytes | None = None) -> FuzzRequest:
    path, _, query = url.partition("?")
    return FuzzRequest("supervisor", method, path, tuple(parse_qsl(query)), headers or {}, body)


@pytest.mark.parametrize("path", [f"/api/calls/{CALL}/listen", "/api/click2call", "/api/me/ext"])
async def test_a_csrf_form_field_on_a_json_route_is_refused_plainly(app: Board, path: str) -> None:
    response = await app.send(supervisor_request("POST", path, headers={
        "content-type": "application/x-www-form-urlencoded"},
        body=urlencode({"csrf_token": CSRF, "ext": "999"}).encode()))
    assert response.status_code in (400, 415)
    assert response.json()["ok"] is False and response.json()["message"]
    assert [h for h in SECURITY_HEADERS if h not in response.headers] == []


@pytest.mark.parametrize("query", [
    "date=9999-12-31", "date=2025-02-30", "date=yesterday", "limit=abc", "limit=0", "limit=100000",
    "limit=-5", "result=bogus!!", "username=" + "x" * 300,
])
async def test_an_out_of_range_or_malformed_audit_query_answers_400(app: Board, query: str) -> None:
    for path in ("/api/audit", "/audit"):
        response = await app.send(supervisor_request("GET", f"{path}?{query}"))
        assert response.status_code == 400, (path, query, response.status_code)
        assert [h for h in SECURITY_HEADERS if h not in response.headers] == []


async def test_audit_filters_by_result_and_by_who_over_http(app: Board) -> None:
    kiosk = FuzzRequest(role="kiosk", method="POST", path=f"/api/calls/{CALL}/barge", query=(),
                        headers={}, body=b"{}")
    for _ in range(3):
        assert (await app.send(kiosk)).status_code == 403
    listen = supervisor_request("POST", f"/api/calls/{CALL}/listen",
                                headers={"x-csrf-token": CSRF}, body=b'{"ext": "999"}')
    assert (await app.send(listen)).status_code == 200

    async def rows(query: str) -> list[dict[str, Any]]:
        response = await app.send(supervisor_request("GET", f"/api/audit?{query}"))
        assert response.status_code == 200, response.text
        return response.json()["rows"]  # type: ignore[no-any-return]

    [ok] = await rows("result=ok")
    assert (ok["username"], ok["action"]) == ("supervisor@sim", "listen")
    [refused] = await rows("result=refused")
    assert (refused["username"], refused["count"]) == ("kiosk", 3)
    assert await rows("result=refused&username=supervisor@sim") == []
    assert [r["action"] for r in await rows("username=kiosk")] == ["barge"]


async def test_an_unexpected_error_answers_500_with_the_headers_and_no_detail(tmp_path: Path) -> None:
    def broken_pbx(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth":
            raise RuntimeError("a bug in the PBX client, with a secret: hunter2")
        return pbx_handler(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(broken_pbx))
    values = matrix_settings(tmp_path)
    application = create_app(values, http_client=http, pbx=PbxClient(
        values.pbx.base_url, values.pbx.api_key, http=http, timeout=2.0))
    browser = Browser(application, "anonymous")
    browser.http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application, raise_app_exceptions=False), base_url=PUBLIC_URL)
    try:
        async with application.router.lifespan_context(application):
            page = await browser.http.get("/login")
            token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
            response = await browser.http.post("/login", data={
                "username": "supervisor@sim", "password": ACCOUNTS["supervisor@sim"][0],
                "csrf_token": token})
    finally:
        await browser.http.aclose()
        await http.aclose()
    assert response.status_code == 500
    assert "hunter2" not in response.text and "Traceback" not in response.text
    assert [h for h in SECURITY_HEADERS if h not in response.headers] == []
