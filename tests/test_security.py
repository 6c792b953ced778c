from __future__ import annotations

import hmac

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from wallboard import security
from wallboard.principal import Principal
from wallboard.security import (
    CONTENT_SECURITY_POLICY,
    CsrfError,
    SecurityHeadersMiddleware,
    origin_allowed,
    require_csrf,
    tokens_match,
)
from wallboard.settings import defaults

TOKEN = "the-right-token-0123456789"
SUPERVISOR = Principal("supervisor", "boss", "199", "sid", TOKEN)


async def hello(request: Request) -> Response:
    return PlainTextResponse("hi")


async def framed(request: Request) -> Response:
    return PlainTextResponse("mine", headers={"X-Frame-Options": "SAMEORIGIN"})


async def change(request: Request) -> Response:
    try:
        await require_csrf(request, SUPERVISOR)
    except CsrfError as e:
        return JSONResponse({"ok": False}, status_code=e.status_code)
    return JSONResponse({"ok": True})


def client(hsts: bool = False) -> httpx.AsyncClient:
    app = Starlette(
        routes=[Route("/", hello), Route("/framed", framed),
                Route("/change", change, methods=["POST"])],
        middleware=[Middleware(SecurityHeadersMiddleware, hsts=hsts)],
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.mark.parametrize("path", ["/", "/missing"])
async def test_every_response_carries_the_security_headers(path: str) -> None:
    async with client() as c:
        response = await c.get(path)
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-frame-options"] == "DENY"
    assert "camera=()" in response.headers["permissions-policy"]
    assert "strict-transport-security" not in response.headers


def test_csp_forbids_inline_code_and_framing() -> None:
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert "unsafe-eval" not in CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY


async def test_a_route_may_set_its_own_header_once() -> None:
    async with client() as c:
        response = await c.get("/framed")
    assert response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]


async def test_hsts_when_asked() -> None:
    async with client(hsts=True) as c:
        response = await c.get("/")
    assert response.headers["strict-transport-security"].startswith("max-age=")


async def test_websocket_scopes_pass_through_untouched() -> None:
    seen: list[str] = []

    async def inner(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        seen.append(scope["type"])

    await SecurityHeadersMiddleware(inner)({"type": "websocket"}, None, None)  # type: ignore[arg-type]
    assert seen == ["websocket"]


async def test_csrf_header_accepted() -> None:
    async with client() as c:
        response = await c.post("/change", headers={"X-CSRF-Token": TOKEN}, json={})
    assert response.json() == {"ok": True}


async def test_csrf_form_field_accepted() -> None:
    async with client() as c:
        response = await c.post("/change", data={"csrf_token": TOKEN})
    assert response.json() == {"ok": True}


@pytest.mark.parametrize("headers,data", [
    ({}, None),
    ({"X-CSRF-Token": "wrong"}, None),
    ({"X-CSRF-Token": TOKEN[:-1]}, None),
    ({}, {"csrf_token": TOKEN + "x"}),
    ({}, {"csrf_token": ""}),
])
async def test_csrf_refused(headers: dict[str, str], data: dict[str, str] | None) -> None:
    async with client() as c:
        response = await c.post("/change", headers=headers, data=data)
    assert response.status_code == 403


async def test_token_in_json_body_is_not_accepted() -> None:
    # The browser sends the header; a token in a JSON body would invite
    # cross-site text/plain "JSON" posts to try their luck.
    async with client() as c:
        response = await c.post("/change", json={"csrf_token": TOKEN})
    assert response.status_code == 403


def test_empty_expected_token_never_matches() -> None:
    assert tokens_match("", "") is False
    assert tokens_match("x", "") is False
    assert tokens_match("x", "x") is True


def test_csrf_compare_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.hmac, "compare_digest", spy)
    assert tokens_match("abc", "abd") is False
    assert seen == [(b"abc", b"abd")]


SETTINGS = defaults().with_values(server={
    "public_url": "http://127.0.0.1:8000",
    "allowed_origins": ["https://board.example.com", "http://tv.local:8080/"],
})


@pytest.mark.parametrize("origin", [
    "http://127.0.0.1:8000",
    "HTTP://127.0.0.1:8000",
    "https://board.example.com",
    "https://board.example.com:443",
    "http://tv.local:8080",
])
def test_origin_allowed(origin: str) -> None:
    assert origin_allowed(origin, SETTINGS) is True


@pytest.mark.parametrize("origin", [
    None, "", "null",
    "http://127.0.0.1:8001",
    "https://127.0.0.1:8000",
    "http://localhost:8000",
    "http://127.0.0.1:8000.evil.example",
    "http://evil.example/http://127.0.0.1:8000",
    "http://board.example.com",
    "https://evil.board.example.com",
    "https://board.example.com.evil.example",
    "http://user@127.0.0.1:8000",
    "http://127.0.0.1:8000/path",
    "ftp://127.0.0.1:8000",
    "http://127.0.0.1:notaport",
])
def test_origin_refused(origin: str | None) -> None:
    assert origin_allowed(origin, SETTINGS) is False


def test_public_url_with_path_still_gives_its_origin() -> None:
    settings = defaults().with_values(server={"public_url": "https://pbx.example.com/wallboard"})
    assert origin_allowed("https://pbx.example.com", settings) is True
    assert origin_allowed("https://pbx.example.com/wallboard", settings) is False
