from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tests.factories import web_parts
from wallboard.app import create_app
from wallboard.principal import Auth
from wallboard.settings import Settings, defaults
from wallboard.web import pages
from wallboard.web.context import PartsMiddleware

ROOT = Path(__file__).resolve().parent.parent
KIOSK_TOKEN = "tv-token-1"
BOOT = re.compile(r'<script type="application/json" id="boot">(.*?)</script>', re.S)


def settings(mode: str = "pbx", **display: Any) -> Settings:
    return defaults().with_values(auth={"mode": mode, "kiosk_tokens": [KIOSK_TOKEN]},
                                  display=display)


async def login_page(request: Request) -> Response:
    return pages.render(request, "login.html", {
        "error": request.query_params.get("error"), "next": "/", "username": "<b>me</b>",
        "ext": "", "csrf_token": "login-token"})


async def audit_page(request: Request) -> Response:
    rows = [{"at": 1764288000123, "username": "<script>x</script>", "role": "supervisor",
             "ip": "10.0.0.9", "action": "listen", "call_id": "c-1", "agent_ext": "1001",
             "target_ext": "999", "result": "USER_NOT_REGISTERED", "error": "not registered"}]
    return pages.render(request, "audit.html", {"rows": rows, "filters": {"date": "2025-11-28",
                                                                          "username": ""}})


def make_app(s: Settings) -> tuple[Starlette, Auth]:
    auth = Auth(s)
    app = Starlette(
        routes=[Route("/", pages.board), Route("/kiosk", pages.kiosk),
                Route("/login", login_page), Route("/audit", audit_page),
                Mount("/static", StaticFiles(directory=ROOT / "static"), name="static")],
        middleware=[Middleware(PartsMiddleware,
                               parts=web_parts(s, auth=auth, templates=pages.make_templates(ROOT / "templates")))],
    )
    return app, auth


def client(app: Starlette, cookies: dict[str, str] | None = None) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                             cookies=cookies)


def session_cookie(auth: Auth, username: str, role: str, ext: str | None = "999") -> dict[str, str]:
    session = auth.sessions.create(username, role, ext)  # type: ignore[arg-type]
    response = Response()
    auth.set_session_cookie(response, session)
    name, _, rest = response.headers["set-cookie"].partition("=")
    return {name: rest.split(";", 1)[0]}


def boot_of(html: str) -> dict[str, Any]:
    match = BOOT.search(html)
    assert match, "no boot JSON"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


async def get(app: Starlette, path: str, cookies: dict[str, str] | None = None) -> httpx.Response:
    async with client(app, cookies) as c:
        return await c.get(path)


async def test_without_a_session_the_board_redirects_to_login_with_next() -> None:
    app, _ = make_app(settings())
    response = await get(app, "/?kiosk=1&lang=en")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2F%3Fkiosk%3D1%26lang%3Den"


async def test_supervisor_tab_has_actions_csrf_and_vietnamese_by_default() -> None:
    app, auth = make_app(settings())
    response = await get(app, "/", session_cookie(auth, "boss", "supervisor"))
    assert response.status_code == 200
    assert '<html lang="vi" data-layout="tab"' in response.text
    boot = boot_of(response.text)
    assert boot["role"] == "supervisor" and boot["layout"] == "tab" and boot["actions"] is True
    assert boot["csrf"] and boot["ext"] == "999" and boot["ws_path"] == "/ws"
    assert boot["catalogue"]["state.idle"] == "Sẵn sàng"
    assert boot["thresholds"] == {"ringing_warn": 15, "oncall_warn": 300, "waiting_warn": 60,
                                  "sla": 20, "blank_after": 300}
    assert set(boot["stale_after"]) == {"agents", "calls", "status", "cdr"}
    assert 'data-form="click2call"' in response.text and "data-confirm" in response.text
    assert f'name="csrf_token" value="{boot["csrf"]}"' in response.text  # the logout form


async def test_viewer_gets_no_action_controls() -> None:
    app, auth = make_app(settings())
    response = await get(app, "/", session_cookie(auth, "watcher", "viewer"))
    boot = boot_of(response.text)
    assert boot["role"] == "viewer" and boot["actions"] is False
    assert "data-form=" not in response.text and "data-confirm" not in response.text


async def test_kiosk_flag_gives_the_tv_layout_without_actions() -> None:
    app, auth = make_app(settings())
    response = await get(app, "/?kiosk=1", session_cookie(auth, "boss", "supervisor"))
    assert 'data-layout="kiosk" data-theme="dark"' in response.text
    boot = boot_of(response.text)
    assert boot["layout"] == "kiosk" and boot["actions"] is False
    assert "data-filter-state" not in response.text


async def test_kiosk_token_page_passes_the_token_to_the_socket() -> None:
    app, _ = make_app(settings(rotate_seconds=20))
    response = await get(app, f"/kiosk?token={KIOSK_TOKEN}")
    assert response.status_code == 200
    boot = boot_of(response.text)
    assert boot["role"] == "kiosk" and boot["layout"] == "kiosk" and boot["actions"] is False
    assert boot["ws_path"] == f"/ws?token={KIOSK_TOKEN}"
    assert boot["state_path"] == f"/api/state?token={KIOSK_TOKEN}"
    assert boot["rotate_seconds"] == 20


async def test_kiosk_with_a_wrong_token_goes_to_login() -> None:
    app, _ = make_app(settings())
    response = await get(app, "/kiosk?token=nope")
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")


async def test_lang_query_switches_language_and_is_remembered_in_a_cookie() -> None:
    app, auth = make_app(settings())
    cookies = session_cookie(auth, "boss", "supervisor")
    response = await get(app, "/?lang=en", cookies)
    assert '<html lang="en"' in response.text
    assert boot_of(response.text)["catalogue"]["state.idle"] == "Available"
    assert boot_of(response.text)["locale"] == "en-US"
    assert "lang=en" in response.headers["set-cookie"]
    again = await get(app, "/", {**cookies, "lang": "en"})
    assert '<html lang="en"' in again.text
    assert 'href="/?lang=vi"' in again.text


async def test_demo_mode_shows_the_banner_and_needs_no_login() -> None:
    app, _ = make_app(settings("none"))
    response = await get(app, "/")
    assert response.status_code == 200
    assert 'class="demo-banner"' in response.text
    assert boot_of(response.text)["demo"] is True


async def test_no_inline_script_and_pbx_like_strings_cannot_break_out_of_the_boot_json() -> None:
    app, auth = make_app(settings())
    evil = "</script><script>alert(1)</script>"
    response = await get(app, "/", session_cookie(auth, evil, "supervisor"))
    assert evil not in response.text
    assert boot_of(response.text)["name"] == evil
    for tag in re.findall(r"<script\b[^>]*>", response.text):
        assert 'type="application/json"' in tag or "src=" in tag, tag
    assert "onclick" not in response.text and "style=" not in response.text


async def test_every_page_has_the_dom_hooks_tests_rely_on() -> None:
    app, auth = make_app(settings())
    html = (await get(app, "/", session_cookie(auth, "boss", "supervisor"))).text
    for kpi in ("answered", "busy", "no_answer", "failed", "unknown", "total", "agents_online",
                "agents_idle", "agents_ringing", "agents_oncall", "active_calls", "waiting",
                "longest_wait", "service_level"):
        assert f'data-kpi="{kpi}"' in html
    for hook in ('data-conn="reconnecting"', "data-toast", "data-agents", "data-calls",
                 "data-updated", 'data-region="kpis"'):
        assert hook in html


async def test_render_gives_login_the_base_context_and_translates_an_error_key() -> None:
    app, _ = make_app(settings())
    response = await get(app, "/login?error=login.error.invalid&lang=en")
    assert '<html lang="en"' in response.text
    assert "Wrong username or password." in response.text
    assert 'value="login-token"' in response.text
    assert "&lt;b&gt;me&lt;/b&gt;" in response.text


async def test_login_shows_an_already_translated_message_as_is() -> None:
    app, _ = make_app(settings())
    response = await get(app, "/login?error=Sai%20m%E1%BA%ADt%20kh%E1%BA%A9u")
    assert "Sai mật khẩu" in response.text


async def test_audit_page_renders_rows_escaped_with_words_from_the_catalogue() -> None:
    app, auth = make_app(settings())
    response = await get(app, "/audit?lang=en", session_cookie(auth, "boss", "supervisor"))
    assert "&lt;script&gt;x&lt;/script&gt;" in response.text
    assert "<script>x" not in response.text
    assert "2025-11-28 00:00:00 UTC" in response.text
    assert "Refused" in response.text and "Listen" in response.text
    assert 'value="2025-11-28"' in response.text


async def test_the_real_app_serves_the_board_and_its_static_files(tmp_path: Path) -> None:
    s = defaults().with_values(auth={"mode": "none"}, webhook={"register": False},
                               storage={"path": str(tmp_path / "wb.db")})
    async with httpx.AsyncClient() as http, client(create_app(s, http_client=http)) as c:
        page = await c.get("/")
        assert page.status_code == 200 and boot_of(page.text)["layout"] == "tab"
        for path in ("/static/js/main.js", "/static/css/board.css"):
            assert (await c.get(path)).status_code == 200
