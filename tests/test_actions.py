from __future__ import annotations

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

from tests.factories import web_parts
from wallboard.audit import AuditLog
from wallboard.pbx.errors import PbxError
from wallboard.settings import Settings, defaults
from wallboard.tenancy import Parts
from wallboard.web import routes
from wallboard.web.context import PartsMiddleware, principal_of
from wallboard.web.pages import make_templates

PASSWORD = "pw-123456"
KIOSK_TOKEN = "tv-token"
CALL = "6a65480c-1111-2222-3333-444455556666"
AUDIT_TEMPLATE = "{% for r in rows %}[{{ r.username }} {{ r.action }} {{ r.result }}]{% endfor %}"


@dataclass
class Account:
    level: str


@dataclass
class FakePbx:
    """Records calls; `error` makes the next actions fail with that PbxError."""

    audit: AuditLog
    error: PbxError | None = None
    calls: list[tuple[Any, ...]] = field(default_factory=list)
    rows_seen_pending: list[bool] = field(default_factory=list)

    async def login(self, username: str, password: str) -> Account:
        if password != PASSWORD:
            raise PbxError("INVALID_CREDENTIALS", "no", status=401)
        return Account({"boss": "admin", "anna": "admin"}.get(username, "user"))

    async def _act(self, *call: Any) -> dict[str, str]:
        # The audit row must already be there, without a result, when the PBX is asked.
        newest = (await self.audit.query(limit=1))[0]
        self.rows_seen_pending.append(newest["result"] is None and newest["allowed"])
        self.calls.append(call)
        if self.error is not None:
            raise self.error
        return {"status": "success"}

    async def call_action(self, call_id: str, action: str, ext: str) -> dict[str, str]:
        return await self._act(call_id, action, ext)

    async def click2call(self, ext: str, phone: str, *, wait: bool = False) -> dict[str, str]:
        return await self._act("click2call", ext, phone, wait)


@dataclass
class FakeEngine:
    calls: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {CALL: {"call_id": CALL, "agent": "1001"}})
    monitors: list[tuple[str, dict[str, Any] | None]] = field(default_factory=list)

    def call(self, call_id: str) -> dict[str, Any] | None:
        return self.calls.get(call_id)

    def set_monitor(self, call_id: str, info: dict[str, Any] | None) -> None:
        self.monitors.append((call_id, info))


class FakeHub:
    def close_session(self, session_id: str) -> int:
        return 0


def page_csrf(request: Request) -> JSONResponse:
    principal = principal_of(request)
    return JSONResponse(principal.csrf_token if principal else None)


def make_settings(tmp_path: Path, **auth_values: Any) -> Settings:
    return defaults().with_values(
        auth={"kiosk_tokens": [KIOSK_TOKEN], **auth_values},
        storage={"path": str(tmp_path / "audit.db")},
        display={"language": "en"},
    )


class Client(httpx.AsyncClient):
    def __init__(self, app: Starlette) -> None:
        super().__init__(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
        self.app = app
        self.csrf = ""

    @property
    def parts(self) -> Parts:
        return self.app.state.parts  # type: ignore[no-any-return]

    @property
    def pbx(self) -> FakePbx:
        return self.parts.pbx  # type: ignore[return-value]

    @property
    def audit(self) -> AuditLog:
        return self.parts.audit

    @property
    def engine(self) -> FakeEngine:
        return self.parts.engine  # type: ignore[return-value]

    async def login(self, username: str, ext: str = "") -> None:
        page = await self.get("/login")
        token = re.search(r"csrf=(\S+)", page.text)
        assert token
        response = await self.post("/login", data={"username": username, "password": PASSWORD,
                                                   "ext": ext, "csrf_token": token.group(1)})
        assert response.status_code == 303
        self.csrf = (await self.get("/csrf")).json()

    async def act(self, action: str, body: Any = None, *, call_id: str = CALL,
                  csrf: str | None = None, **kwargs: Any) -> httpx.Response:
        token = self.csrf if csrf is None else csrf
        return await self.post(f"/api/calls/{call_id}/{action}", json=body,
                               headers={"X-CSRF-Token": token}, **kwargs)


@pytest.fixture
async def make_client(tmp_path: Path) -> AsyncIterator[Any]:
    logs: list[AuditLog] = []

    async def make(**auth_values: Any) -> Client:
        settings = make_settings(tmp_path, **auth_values)
        templates_dir = tmp_path / "templates"
        templates_dir.mkdir(exist_ok=True)
        (templates_dir / "login.html").write_text("csrf={{ csrf_token }} {{ error or '' }}")
        (templates_dir / "audit.html").write_text(AUDIT_TEMPLATE)
        audit = AuditLog(settings.storage.path)
        await audit.open()
        logs.append(audit)
        parts = web_parts(settings, templates=make_templates(str(templates_dir)), audit=audit,
                          pbx=FakePbx(audit), engine=FakeEngine(), hub=FakeHub())
        app = Starlette(routes=[*routes(), Route("/csrf", page_csrf)],
                        middleware=[Middleware(PartsMiddleware, parts=parts)])
        app.state.parts = parts
        return Client(app)

    yield make
    for audit in logs:
        await audit.close()


@pytest.fixture
async def boss(make_client: Any) -> Client:
    client: Client = await make_client()
    await client.login("boss", ext="999")
    return client


async def test_listen_rings_the_supervisors_own_ext(boss: Client) -> None:
    response = await boss.act("listen", {})
    assert response.status_code == 200
    assert response.json() == {"ok": True,
                               "message": "Listening: your extension 999 is ringing."}
    assert boss.pbx.calls == [(CALL, "listen", "999")]
    assert boss.pbx.rows_seen_pending == [True]
    [row] = await boss.audit.query()
    assert (row["username"], row["role"], row["action"], row["call_id"], row["agent_ext"],
            row["target_ext"], row["allowed"], row["result"]) == (
        "boss", "supervisor", "listen", CALL, "1001", "999", True, "ok")
    assert boss.engine.monitors == [
        (CALL, {"agent": "1001", "mode": "listen", "by": "boss", "ext": "999"})]


async def test_listen_without_a_body_uses_the_own_ext(boss: Client) -> None:
    response = await boss.post(f"/api/calls/{CALL}/barge", headers={"X-CSRF-Token": boss.csrf})
    assert response.json()["ok"] is True
    assert boss.pbx.calls == [(CALL, "barge", "999")]


async def test_whisper_to_another_ext(boss: Client) -> None:
    response = await boss.act("whisper", {"ext": "1005"})
    assert response.json()["ok"] is True
    assert boss.pbx.calls == [(CALL, "whisper", "1005")]


async def test_transfer_needs_an_ext(boss: Client) -> None:
    response = await boss.act("transfer", {})
    assert response.status_code == 400
    assert response.json()["error"] == "NO_EXT"
    assert boss.pbx.calls == []
    [row] = await boss.audit.query()
    assert (row["allowed"], row["result"]) == (False, "NO_EXT")
    ok = await boss.act("transfer", {"ext": "1002"})
    assert ok.json()["ok"] is True
    assert boss.pbx.calls == [(CALL, "transfer", "1002")]
    assert boss.engine.monitors == []  # a transfer is not monitoring


async def test_no_own_ext_and_none_given(make_client: Any) -> None:
    client: Client = await make_client()
    await client.login("anna")  # no ext at login
    response = await client.act("listen", {})
    assert response.status_code == 400
    assert response.json()["error"] == "NO_EXT"
    assert "extension" in response.json()["message"]


@pytest.mark.parametrize("body", [{"ext": "12a"}, {"ext": "1 2"}, {"ext": ["1"]}, [1], "x"])
async def test_bad_ext_is_400(boss: Client, body: Any) -> None:
    response = await boss.act("listen", body)
    assert response.status_code == 400
    assert boss.pbx.calls == []


async def test_bad_call_id_is_400_and_never_reaches_the_pbx(boss: Client) -> None:
    response = await boss.act("listen", {}, call_id="..%2F..%2Fauth")
    assert response.status_code in (400, 404)
    response = await boss.act("listen", {}, call_id="a;b")
    assert response.status_code == 400
    assert boss.pbx.calls == []


async def test_unknown_action_is_404(boss: Client) -> None:
    response = await boss.act("hangup", {})
    assert response.status_code == 404
    assert await boss.audit.query() == []


@pytest.mark.parametrize("lang,text", [
    ("en", "Your extension 999 is not logged in to a softphone or IP phone."),
    ("vi", "Máy nhánh 999 của bạn chưa đăng nhập softphone hoặc IP phone."),
])
async def test_pbx_refusal_in_plain_words_in_both_languages(boss: Client, lang: str,
                                                            text: str) -> None:
    boss.pbx.error = PbxError("USER_NOT_REGISTERED", "User not registered")
    response = await boss.act("listen", {}, params={"lang": lang})
    assert response.status_code == 200
    assert response.json() == {"ok": False, "error": "USER_NOT_REGISTERED", "message": text}
    [row] = await boss.audit.query()
    assert (row["allowed"], row["result"], row["error"]) == (
        True, "USER_NOT_REGISTERED", "User not registered")
    assert boss.engine.monitors == []


async def test_language_from_the_lang_cookie(boss: Client) -> None:
    boss.cookies.set("lang", "vi")
    response = await boss.act("listen", {})
    assert response.json()["message"] == "Đang nghe: máy nhánh 999 của bạn đang đổ chuông."


async def test_unknown_pbx_code_says_the_code(boss: Client) -> None:
    boss.pbx.error = PbxError("HTTP_502", "bad gateway", status=502)
    response = await boss.act("listen", {})
    assert response.json() == {"ok": False, "error": "HTTP_502",
                               "message": "The PBX refused: HTTP_502."}


async def test_unexpected_failure_still_completes_the_row(boss: Client) -> None:
    boss.pbx.error = RuntimeError("bug")  # type: ignore[assignment]
    response = await boss.act("listen", {})
    assert response.json()["ok"] is False
    [row] = await boss.audit.query()
    assert row["result"] == "INTERNAL"


async def test_anonymous_is_401_and_not_audited(make_client: Any) -> None:
    client: Client = await make_client()
    response = await client.act("listen", {"ext": "999"})
    assert response.status_code == 401
    assert response.json()["error"] == "UNAUTHORIZED"
    assert await client.audit.query() == []
    assert client.pbx.calls == []


async def test_viewer_is_403_and_audited(make_client: Any) -> None:
    client: Client = await make_client()
    await client.login("eve", ext="1009")
    response = await client.act("listen", {})
    assert response.status_code == 403
    assert response.json() == {"ok": False, "error": "FORBIDDEN",
                               "message": "Only supervisors can do that."}
    [row] = await client.audit.query()
    assert (row["username"], row["role"], row["allowed"], row["result"]) == (
        "eve", "viewer", False, "FORBIDDEN")
    assert client.pbx.calls == []


async def test_kiosk_is_403_and_audited(make_client: Any) -> None:
    client: Client = await make_client()
    response = await client.act("barge", {"ext": "999"}, params={"token": KIOSK_TOKEN})
    assert response.status_code == 403
    [row] = await client.audit.query()
    assert (row["role"], row["action"], row["result"]) == ("kiosk", "barge", "FORBIDDEN")
    assert client.pbx.calls == []


@pytest.mark.parametrize("csrf", ["", "wrong"])
async def test_bad_csrf_is_403_and_audited(boss: Client, csrf: str) -> None:
    response = await boss.act("listen", {}, csrf=csrf)
    assert response.status_code == 403
    assert response.json()["error"] == "CSRF"
    [row] = await boss.audit.query()
    assert (row["allowed"], row["result"]) == (False, "CSRF")
    assert boss.pbx.calls == []


async def test_csrf_is_required_in_demo_mode_too(make_client: Any) -> None:
    client: Client = await make_client(mode="none")
    client.csrf = (await client.get("/csrf")).json()
    assert (await client.act("listen", {}, csrf="")).status_code == 403
    response = await client.act("listen", {})
    assert response.json()["ok"] is True
    assert client.pbx.calls == [(CALL, "listen", "999")]  # auth.demo_ext


async def test_rate_limit_per_supervisor(make_client: Any) -> None:
    boss: Client = await make_client(actions_per_minute=3)
    await boss.login("boss", ext="999")
    statuses = [(await boss.act("listen", {})).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert len(boss.pbx.calls) == 3
    rows = await boss.audit.query()
    assert rows[0]["result"] == "RATE_LIMITED"
    assert rows[0]["allowed"] is False
    # Another supervisor has their own budget.
    anna = Client(boss.app)
    await anna.login("anna", ext="998")
    assert (await anna.act("listen", {})).status_code == 200


async def test_click2call_uses_the_async_endpoint(boss: Client) -> None:
    response = await boss.post("/api/click2call", json={"phone": "0899123456"},
                               headers={"X-CSRF-Token": boss.csrf})
    assert response.json()["ok"] is True
    assert boss.pbx.calls == [("click2call", "999", "0899123456", False)]
    [row] = await boss.audit.query()
    assert (row["action"], row["phone"], row["target_ext"], row["result"]) == (
        "call", "0899123456", "999", "ok")


@pytest.mark.parametrize("body", [{"phone": "abc"}, {"phone": ""}, {}, {"phone": "0899", "ext": "x"}])
async def test_click2call_bad_input(boss: Client, body: dict[str, Any]) -> None:
    response = await boss.post("/api/click2call", json=body, headers={"X-CSRF-Token": boss.csrf})
    assert response.status_code == 400
    assert boss.pbx.calls == []


async def test_click2call_refused_for_viewers(make_client: Any) -> None:
    client: Client = await make_client()
    await client.login("eve", ext="1009")
    response = await client.post("/api/click2call", json={"phone": "0899123456"},
                                 headers={"X-CSRF-Token": client.csrf})
    assert response.status_code == 403
    assert client.pbx.calls == []


async def test_audit_api_for_supervisors_with_filters(boss: Client) -> None:
    await boss.act("listen", {})
    await boss.act("whisper", {"ext": "1003"})
    response = await boss.get("/api/audit")
    assert response.status_code == 200
    assert [r["action"] for r in response.json()["rows"]] == ["whisper", "listen"]
    assert (await boss.get("/api/audit", params={"username": "nobody"})).json()["rows"] == []
    assert (await boss.get("/api/audit", params={"date": "2000-01-01"})).json()["rows"] == []
    assert (await boss.get("/api/audit", params={"date": "yesterday"})).status_code == 400


async def test_audit_api_refuses_others(make_client: Any) -> None:
    client: Client = await make_client()
    assert (await client.get("/api/audit")).status_code == 401
    assert (await client.get("/api/audit", params={"token": KIOSK_TOKEN})).status_code == 403
    await client.login("eve")
    assert (await client.get("/api/audit")).status_code == 403


async def test_audit_page(boss: Client, make_client: Any) -> None:
    await boss.act("listen", {})
    page = await boss.get("/audit")
    assert page.status_code == 200
    assert "[boss listen ok]" in page.text
    viewer: Client = await make_client()
    anonymous = await viewer.get("/audit")
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/login?next=%2Faudit"  # the one login redirect of every page
    await viewer.login("eve")
    assert (await viewer.get("/audit")).status_code == 403
