"""Every route of SPEC section 4 × every role, through the real `create_app`.

The PBX is an httpx MockTransport behind the real PbxClient: it knows two
accounts and accepts actions, and answers 503 to every poll, so /readyz is
503 for everyone (what matters here is that no role changes it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jinja2
import pytest
from starlette.applications import Starlette

from wallboard.app import create_app, parts_of
from wallboard.paths import web_dir
from wallboard.pbx.client import PbxClient
from wallboard.settings import Settings, defaults

KIOSK_TOKEN = "kiosk-token-for-the-matrix"
HOOK_SECRET = "hook-secret-for-the-matrix"
PUBLIC_URL = "http://testserver"
CALL = "6a65480c-0000-4000-8000-000000000001"
ACCOUNTS = {"viewer@sim": ("viewer-pass-7x", "user"),
            "supervisor@sim": ("supervisor-pass-9y", "admin")}
ROLES = ("anonymous", "kiosk", "viewer", "supervisor")

# route -> expected status per role (anonymous, kiosk, viewer, supervisor).
# "kiosk" requests carry ?token=; /ws answers with a close code or "open".
MATRIX: dict[str, tuple[int | str, ...]] = {
    "GET /":                          (303, 303, 200, 200),
    "GET /kiosk":                     (303, 200, 200, 200),
    "GET /login":                     (200, 200, 303, 303),
    "POST /logout":                   (303, 303, 303, 303),
    "GET /api/state":                 (401, 200, 200, 200),
    "WS /ws":                         (4401, "open", "open", "open"),
    "POST /api/calls/{id}/listen":    (401, 403, 403, 200),
    "POST /api/calls/{id}/whisper":   (401, 403, 403, 200),
    "POST /api/calls/{id}/barge":     (401, 403, 403, 200),
    "POST /api/calls/{id}/transfer":  (401, 403, 403, 200),
    "POST /api/click2call":           (401, 403, 403, 200),
    "POST /api/me/ext":               (401, 403, 403, 200),
    "GET /api/audit":                 (401, 403, 403, 200),
    "GET /audit":                     (303, 303, 403, 200),
    "GET /history":                   (303, 303, 403, 200),
    "GET /api/history/curve":         (401, 403, 403, 200),
    "GET /api/history/export.csv":    (401, 403, 403, 200),
    "GET /api/history/export.json":   (401, 403, 403, 200),
    "POST /hooks/pbx/{secret}":       (200, 200, 200, 200),
    "POST /hooks/pbx/{wrong}":        (404, 404, 404, 404),
    "GET /healthz":                   (200, 200, 200, 200),
    "GET /readyz":                    (503, 503, 503, 503),
    "GET /metrics":                   (200, 200, 200, 200),
}


def pbx_handler(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/v1/auth" and request.method == "POST":
        body = json.loads(request.content)
        account = ACCOUNTS.get(body.get("username"))
        if account is None or body.get("password") != account[0]:
            return httpx.Response(401, json={"status": "fail", "error": "INVALID_CREDENTIALS"})
        return httpx.Response(200, json={"data": {
            "user_uuid": "u", "domain_uuid": "d", "username": body["username"],
            "api_key": "account-api-key", "user_enabled": "true", "level": account[1]}})
    if path == "/v1/auth/token":
        return httpx.Response(200, json={"data": {
            "expired": int(time.time()) + 3600, "token": "matrix-token", "user_id": "u"}})
    if match := re.fullmatch(r"/v1/call/([^/]+)/(listen|whisper|barge|transfer)", path):
        ext = json.loads(request.content)["ext"]
        return httpx.Response(200, json={"status": "success", "call_id": match[1], "ext": ext})
    if path == "/v1/click2call/async":
        return httpx.Response(200, json={"status": "success", "call_id": "c2c-1"})
    return httpx.Response(503, json={"status": "fail", "error": "DOWN"})


def matrix_settings(tmp_path: Path) -> Settings:
    return defaults().with_values(
        server={"public_url": PUBLIC_URL},
        pbx={"base_url": "http://pbx.test", "api_key": "matrix-api-key"},
        webhook={"secret": HOOK_SECRET, "register": False},
        auth={"kiosk_tokens": [KIOSK_TOKEN], "actions_per_minute": 1000},
        storage={"path": str(tmp_path / "var" / "wallboard.db")},
    )


class Browser:
    """One role's browser: its cookies, CSRF token and the token in its URLs."""

    def __init__(self, app: Starlette, role: str) -> None:
        self.app = app
        self.role = role
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                      base_url=PUBLIC_URL)
        self.csrf = ""
        self.params = {"token": KIOSK_TOKEN} if role == "kiosk" else {}

    async def login(self, username: str) -> None:
        page = await self.http.get("/login")
        token = _csrf_in(page.text)
        response = await self.http.post("/login", data={
            "username": username, "password": ACCOUNTS[username][0], "ext": "999",
            "csrf_token": token})
        assert response.status_code == 303, response.text
        state = await self.http.get("/")
        self.csrf = _boot(state.text)["csrf"]

    async def status(self, route: str) -> int | str:
        method, path = route.split(" ", 1)
        path = path.replace("{id}", CALL).replace("{secret}", HOOK_SECRET)
        path = path.replace("{wrong}", "not-" + HOOK_SECRET)
        if method == "WS":
            return await self.websocket(path)
        body: dict[str, Any] | None = None
        if path.startswith("/api/calls/"):
            body = {"ext": "1002"}
        elif path == "/api/click2call":
            body = {"phone": "0899123456"}
        elif path == "/api/me/ext":
            body = {"ext": "998"}
        elif path.startswith("/hooks/"):
            body = {"state": "ringing", "call_id": "hook-call-1", "direction": "inbound",
                    "from_number": "0899123456", "to_number": "1001",
                    "time": "2025-11-28 07:00:00"}
        headers = {"X-CSRF-Token": self.csrf} if self.csrf and method == "POST" else {}
        response = await self.http.request(method, path, params=self.params, json=body,
                                           headers=headers)
        return response.status_code

    async def websocket(self, path: str, origin: str = PUBLIC_URL) -> int | str:
        """'open' when the server sends a first frame, else its close code."""
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        query = f"token={KIOSK_TOKEN}" if self.role == "kiosk" else ""
        scope = {
            "type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws", "path": path,
            "raw_path": path.encode(), "root_path": "", "query_string": query.encode(),
            "headers": [(b"host", b"testserver"), (b"origin", origin.encode()),
                        *([(b"cookie", cookie.encode())] if cookie else [])],
            "client": ("127.0.0.1", 5000), "server": ("testserver", 80), "subprotocols": [],
        }
        sent: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        done = asyncio.Event()
        connected = False

        async def receive() -> dict[str, Any]:
            nonlocal connected
            if not connected:
                connected = True
                return {"type": "websocket.connect"}
            await done.wait()
            return {"type": "websocket.disconnect", "code": 1000}

        async def send(message: dict[str, Any]) -> None:
            await sent.put(message)

        task = asyncio.ensure_future(self.app(scope, receive, send))
        try:
            first = await asyncio.wait_for(sent.get(), 5)
            if first["type"] == "websocket.accept":
                first = await asyncio.wait_for(sent.get(), 5)
            if first["type"] == "websocket.close":
                return int(first.get("code", 1000))
            return "open" if json.loads(first["text"])["type"] == "snapshot" else first["text"]
        finally:
            done.set()
            await asyncio.wait_for(task, 5)


def _csrf_in(html: str) -> str:
    match = (re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
             or re.search(r'value="([^"]+)"[^>]*name="csrf_token"', html))
    assert match, "no csrf_token field on the login page"
    return match.group(1)


def _boot(html: str) -> dict[str, Any]:
    match = re.search(r'<script[^>]*id="boot"[^>]*>(.*?)</script>', html, re.S)
    assert match, "no boot JSON on the board"
    return json.loads(match.group(1))  # type: ignore[no-any-return]


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Starlette]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(pbx_handler))
    settings = matrix_settings(tmp_path)
    pbx = PbxClient(settings.pbx.base_url, settings.pbx.api_key, http=http, timeout=2.0)
    application = create_app(settings, http_client=http, pbx=pbx)
    # The login and audit templates are the front end's; until they land these
    # stand-ins (found only when the real ones are missing) keep the matrix honest.
    fallback = tmp_path / "fallback-templates"
    fallback.mkdir()
    (fallback / "login.html").write_text(
        '<form method="post"><input type="hidden" name="csrf_token" value="{{ csrf_token }}">'
        "</form>")
    (fallback / "audit.html").write_text("{% for r in rows %}{{ r.action }}{% endfor %}")
    parts_of(application).templates.env.loader = jinja2.FileSystemLoader([web_dir("templates"), str(fallback)])
    async with application.router.lifespan_context(application):
        yield application
    await http.aclose()


async def test_role_matrix(app: Starlette, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    browsers = {role: Browser(app, role) for role in ROLES}
    await browsers["viewer"].login("viewer@sim")
    await browsers["supervisor"].login("supervisor@sim")
    try:
        # Logout ends sessions, so it goes last.
        routes = sorted(MATRIX, key=lambda r: r == "POST /logout")
        actual = {route: tuple([await browsers[role].status(route) for role in ROLES])
                  for route in routes}
    finally:
        for browser in browsers.values():
            await browser.http.aclose()
    assert actual == MATRIX
    # Nothing secret in any log line of the whole run.
    settings: Settings = parts_of(app).settings
    secrets = [*settings.secrets(), "matrix-token", "account-api-key",
               *(password for password, _ in ACCOUNTS.values()),
               *(v for b in browsers.values() for v in b.http.cookies.values())]
    # (httpx's lines about requests to testserver are this test's own browsers.)
    text = "\n".join(m for m in (r.getMessage() for r in caplog.records)
                     if PUBLIC_URL + "/" not in m)
    assert "login ok: supervisor@sim" in text
    assert [s for s in secrets if s in text] == []


@pytest.mark.parametrize("origin", ["http://evil.example", "http://testserver.evil.example",
                                    "https://testserver", "null"])
async def test_websocket_refuses_a_foreign_origin(app: Starlette, origin: str) -> None:
    browser = Browser(app, "kiosk")
    try:
        assert await browser.websocket("/ws") == "open"
        assert await browser.websocket("/ws", origin) == 4403
    finally:
        await browser.http.aclose()


# -- after the login: a session the PBX no longer backs, or past its lifetime -------------------


async def _matrix_of(browser: Browser) -> dict[str, int | str]:
    routes = sorted(MATRIX, key=lambda r: r == "POST /logout")  # logout ends the session: last
    return {route: await browser.status(route) for route in routes}


async def test_role_matrix_of_a_demoted_supervisor_is_the_viewers(tmp_path: Path) -> None:
    from wallboard.sessions import recheck

    levels = {name: level for name, (_, level) in ACCOUNTS.items()}

    def demotable(request: httpx.Request) -> httpx.Response:
        response = pbx_handler(request)
        if request.url.path == "/v1/auth" and response.status_code == 200:
            body = json.loads(response.content)
            body["data"]["level"] = levels[body["data"]["username"]]
            return httpx.Response(200, json=body)
        return response

    http = httpx.AsyncClient(transport=httpx.MockTransport(demotable))
    settings = matrix_settings(tmp_path)
    application = create_app(settings, http_client=http, pbx=PbxClient(
        settings.pbx.base_url, settings.pbx.api_key, http=http, timeout=2.0))
    browser = Browser(application, "supervisor")
    try:
        async with application.router.lifespan_context(application):
            await browser.login("supervisor@sim")
            levels["supervisor@sim"] = "user"  # demoted on the PBX
            parts = parts_of(application)
            (session,) = parts.auth.sessions._sessions.values()
            assert await recheck(parts.auth, parts.pbx, parts.hub, session) == "viewer"
            actual = await _matrix_of(browser)
    finally:
        await browser.http.aclose()
        await http.aclose()
    assert actual == {route: statuses[ROLES.index("viewer")] for route, statuses in MATRIX.items()}


@pytest.mark.parametrize("ending", ["idle", "lifetime"])
async def test_role_matrix_of_an_expired_session_is_the_anonymous_one(app: Starlette, ending: str) -> None:
    browser = Browser(app, "supervisor")
    try:
        await browser.login("supervisor@sim")
        sessions = parts_of(app).auth.sessions
        if ending == "idle":
            sessions.idle_seconds = 0.0
        else:
            sessions.max_age = 0.0
        actual = await _matrix_of(browser)
    finally:
        await browser.http.aclose()
    assert actual == {route: statuses[ROLES.index("anonymous")] for route, statuses in MATRIX.items()}


@pytest.mark.parametrize("role", ["kiosk", "viewer", "supervisor"])
async def test_a_socket_over_the_cap_is_closed_with_4429(app: Starlette, role: str) -> None:
    browser = Browser(app, role)
    if role != "kiosk":
        await browser.login(f"{role}@sim")
    cap = parts_of(app).settings.server.max_sockets_per_session
    held = [f"{role}:{n}" for n in range(cap)]
    slots = parts_of(app).auth.sockets
    key = next(iter(slots._open), None)
    assert key is None  # nothing open yet
    # Hold `cap` sockets of this principal open, as screens on other tabs would.
    from wallboard.web.ws import socket_key

    class Held:
        query_params = {"token": KIOSK_TOKEN} if role == "kiosk" else {}

    principal_key = socket_key(Held(), _principal(app, browser, role))  # type: ignore[arg-type]
    for _ in held:
        assert slots.acquire(principal_key, cap)
    try:
        assert await browser.websocket("/ws") == 4429
        slots.release(principal_key)
        assert await browser.websocket("/ws") == "open"
    finally:
        await browser.http.aclose()


def _principal(app: Starlette, browser: Browser, role: str) -> Any:
    from wallboard.principal import Principal

    if role == "kiosk":
        return Principal("kiosk", "kiosk", None, None, "")
    auth = parts_of(app).auth
    session_id = auth._signer.unsign(browser.http.cookies["wb_session"]).decode()
    return Principal(role, f"{role}@sim", None, session_id, "")  # type: ignore[arg-type]
