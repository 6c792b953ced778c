"""Who is asking: sessions, kiosk tokens, the demo principal, and the login routes.

A session cookie holds only a signed random session id; everything else
(username, role, extension, CSRF token, last use) stays in a table in memory,
so a restart ends every session and logout really ends one.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from itsdangerous import BadSignature, Signer
from starlette.datastructures import FormData
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from wallboard.i18n import catalogue, pick_language, t
from wallboard.pbx.errors import PbxError
from wallboard.ratelimit import RateLimiter
from wallboard.security import CsrfError, require_csrf, submitted_csrf, tokens_match
from wallboard.settings import Settings

log = logging.getLogger("wallboard.auth")

Role = Literal["supervisor", "viewer", "kiosk"]
SESSION_COOKIE = "wb_session"
LOGIN_CSRF_COOKIE = "wb_login_csrf"
# A kiosk token (?token=) is read on the kiosk's own paths and on the JSON API, where
# it identifies a kiosk so that an attempt at an action is refused (403) and audited
# rather than treated as anonymous. Pages other than /kiosk ignore it.
KIOSK_PATHS = frozenset({"/kiosk", "/ws", "/api/state"})
KIOSK_PREFIX = "/api/"
EXT_PATTERN = re.compile(r"^[0-9]{1,16}$")
# Login attempts per client address and username a minute, against password guessing.
LOGIN_ATTEMPTS_PER_MINUTE = 10
# These PBX errors mean "we could not ask", not "the password is wrong".
_UNREACHABLE_CODES = frozenset({"TIMEOUT", "UNREACHABLE", "BAD_RESPONSE"})
_SCOPE_KEY = "wallboard.auth"


@dataclass(frozen=True, slots=True)
class Principal:
    role: Role
    name: str
    ext: str | None
    session_id: str | None
    csrf_token: str = field(repr=False)
    mask_numbers: bool = True  # display.mask_phone_numbers

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    @property
    def masked(self) -> bool:
        return self.mask_numbers and not self.is_supervisor


@dataclass(slots=True)
class Session:
    id: str = field(repr=False)
    username: str
    role: Role
    ext: str | None
    csrf_token: str = field(repr=False)
    last_seen: float


class SessionStore:
    """The server side of sessions: {session_id: Session}, with an idle timeout."""

    def __init__(self, idle_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, username: str, role: Role, ext: str | None) -> Session:
        self._purge()
        session = Session(
            id=secrets.token_urlsafe(32), username=username, role=role, ext=ext,
            csrf_token=secrets.token_urlsafe(32), last_seen=self._clock(),
        )
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str) -> Session | None:
        """The live session, marked as used now; None when unknown or idle too long."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if now - session.last_seen > self.idle_seconds:
            del self._sessions[session_id]
            return None
        session.last_seen = now
        return session

    def end(self, session_id: str) -> Session | None:
        return self._sessions.pop(session_id, None)

    def _purge(self) -> None:
        cutoff = self._clock() - self.idle_seconds
        for sid in [sid for sid, s in self._sessions.items() if s.last_seen < cutoff]:
            del self._sessions[sid]


class Auth:
    """Settings, sessions and signing keys: everything that decides who a connection is."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.sessions = SessionStore(settings.auth.session_idle_minutes * 60, clock=clock)
        # An empty session_secret means a random key: sessions end on restart.
        self._secret = settings.server.session_secret.encode() or secrets.token_bytes(32)
        self._signer = Signer(self._secret, salt="wallboard.session")
        self.secure_cookies = settings.server.public_url.lower().startswith("https://")
        # In mode "none" there is no session to hold a token; this one is per
        # process and readable only by our own pages, which is all CSRF needs.
        self._demo_csrf = self._mac("demo-csrf")
        self.demo_ext = settings.auth.demo_ext
        self._kiosk_tokens = [tok.encode() for tok in settings.auth.kiosk_tokens if tok]
        self.login_attempts = RateLimiter(60.0, clock=clock)

    def _mac(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    @property
    def mode(self) -> str:
        return self.settings.auth.mode

    # -- who is asking ----------------------------------------------------------

    def principal_for(self, conn: HTTPConnection) -> Principal | None:
        mask = self.settings.display.mask_phone_numbers
        token = conn.query_params.get("token")
        path = conn.url.path
        # A kiosk token is read-only in every mode, the open demo included: a TV
        # on the wall never gets the action buttons or whole numbers.
        if token and (path in KIOSK_PATHS or path.startswith(KIOSK_PREFIX)) \
                and self.kiosk_token_valid(token):
            return Principal("kiosk", "kiosk", None, None, "", mask)
        if self.mode == "none":
            return Principal("supervisor", "demo", self.demo_ext, None, self._demo_csrf, mask)
        session = self.session_of(conn)
        if session is None:
            return None
        return Principal(session.role, session.username, session.ext, session.id,
                         session.csrf_token, mask)

    def kiosk_token_valid(self, token: str) -> bool:
        # Compare against every token without stopping at a match, in constant
        # time each, so timing tells nothing about which token or how much matched.
        given = token.encode()
        found = False
        for candidate in self._kiosk_tokens:
            found |= hmac.compare_digest(given, candidate)
        return found

    def session_of(self, conn: HTTPConnection) -> Session | None:
        cookie = conn.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            session_id = self._signer.unsign(cookie).decode()
        except (BadSignature, UnicodeDecodeError):
            return None
        return self.sessions.get(session_id)

    # -- cookies ----------------------------------------------------------------

    def set_session_cookie(self, response: Response, session: Session) -> None:
        value = self._signer.sign(session.id.encode()).decode()
        response.set_cookie(SESSION_COOKIE, value, httponly=True, samesite="lax",
                            secure=self.secure_cookies, path="/")

    def clear_session_cookie(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax",
                               secure=self.secure_cookies, path="/")

    def login_csrf(self, request: Request) -> tuple[str, str]:
        """(cookie value, form token) for the login form, before any session exists.

        A signed double submit: the form token is an HMAC of the cookie, so a
        site that can plant a cookie still cannot make a matching form token.
        """
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        return cookie, self._mac("login-csrf:" + cookie)

    def set_login_csrf_cookie(self, response: Response, cookie: str) -> None:
        response.set_cookie(LOGIN_CSRF_COOKIE, cookie, httponly=True, samesite="strict",
                            secure=self.secure_cookies, path="/login")


class AuthMiddleware:
    """Sets scope["principal"] (a Principal or None) for http and websocket scopes."""

    def __init__(self, app: ASGIApp, auth: Auth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope[_SCOPE_KEY] = self.auth
            scope["principal"] = self.auth.principal_for(HTTPConnection(scope))
        await self.app(scope, receive, send)


def principal_of(conn: HTTPConnection) -> Principal | None:
    principal = conn.scope.get("principal")
    return principal if isinstance(principal, Principal) else None


def auth_of(conn: HTTPConnection) -> Auth:
    auth = conn.scope.get(_SCOPE_KEY)
    if not isinstance(auth, Auth):
        raise RuntimeError("AuthMiddleware is not installed")
    return auth


def valid_ext(value: object) -> str | None:
    """The extension as text when it looks like one, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and EXT_PATTERN.match(value.strip()):
        return value.strip()
    return None


def safe_next(value: object) -> str:
    """A local path to go to after login; anything else (another site) becomes "/"."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(ord(ch) < 0x20 or ch == "\\" for ch in value):
        return "/"
    return value


def client_ip(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else ""


def _loggable(text: str) -> str:
    # Usernames come from a form: keep them to one short line in the log.
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:64]


# -- routes ---------------------------------------------------------------------------


def _login_page(request: Request, auth: Auth, *, status: int = 200, error: str | None = None,
                username: str = "", ext: str = "", next_path: str = "/") -> Response:
    # pages imports this module (for principal_of), so it is imported here, when used.
    from wallboard import pages

    cookie, token = auth.login_csrf(request)
    response = pages.render(request, "login.html", {
        "csrf_token": token, "next": next_path, "username": username, "ext": ext, "error": error,
    }, status_code=status)
    auth.set_login_csrf_cookie(response, cookie)
    return response


async def login_form(request: Request) -> Response:
    auth = auth_of(request)
    next_path = safe_next(request.query_params.get("next"))
    principal = principal_of(request)
    if principal is not None and principal.role != "kiosk":
        return RedirectResponse(next_path, status_code=303)
    return _login_page(request, auth, next_path=next_path)


def _text_field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def login_submit(request: Request) -> Response:
    auth = auth_of(request)
    lang = pick_language(request, auth.settings.display.language)
    form = await request.form()
    username = _text_field(form, "username").strip()
    password = _text_field(form, "password")
    ext_text = _text_field(form, "ext").strip()
    next_path = safe_next(_text_field(form, "next"))
    ip = client_ip(request)

    def page(status: int, key: str) -> Response:
        return _login_page(request, auth, status=status, error=t(lang, key, ext=ext_text),
                           username=username, ext=ext_text, next_path=next_path)

    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not tokens_match(await submitted_csrf(request), auth.login_csrf(request)[1]):
        log.warning("login refused: bad CSRF token from %s", ip)
        return page(403, "error.CSRF")
    ext = valid_ext(ext_text) if ext_text else None
    if ext_text and ext is None:
        return page(400, "error.BAD_REQUEST")
    if not username or not password:
        return page(400, "login.error.invalid")
    if not auth.login_attempts.hit(f"{ip} {username.lower()}", LOGIN_ATTEMPTS_PER_MINUTE):
        log.warning("login refused for %s from %s: too many attempts", _loggable(username), ip)
        return page(429, "login.error.rate_limited")
    try:
        account = await request.app.state.pbx.login(username, password)
    except PbxError as error:
        if error.code in _UNREACHABLE_CODES or error.code.startswith("HTTP_5"):
            log.warning("login of %s failed: the PBX did not answer (%s)",
                        _loggable(username), error.code)
            return page(503, "login.error.unreachable")
        log.info("login refused for %s from %s: %s", _loggable(username), ip, error.code)
        return page(401, "login.error.invalid")
    role: Role = "supervisor" if account.level == "admin" else "viewer"
    session = auth.sessions.create(username, role, ext)
    log.info("login ok: %s as %s from %s", _loggable(username), role, ip)
    response = RedirectResponse(next_path, status_code=303)
    auth.set_session_cookie(response, session)
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


async def logout(request: Request) -> Response:
    auth = auth_of(request)
    principal = principal_of(request)
    response = RedirectResponse("/login", status_code=303)
    if principal is None or principal.session_id is None:
        auth.clear_session_cookie(response)
        return response
    await require_csrf(request, principal)
    auth.sessions.end(principal.session_id)
    request.app.state.hub.close_session(principal.session_id)
    log.info("logout: %s", _loggable(principal.name))
    auth.clear_session_cookie(response)
    return response


def error_message(lang: str, code: str, ext: str | None = None) -> str:
    """The catalogue's words for an error code; codes it does not know get error.UNKNOWN."""
    key = f"error.{code}"
    if key not in catalogue(lang) and key not in catalogue("en"):
        key = "error.UNKNOWN"
    return t(lang, key, ext=ext or "", code=code)


def error_response(status: int, code: str, lang: str, ext: str | None = None) -> JSONResponse:
    """The JSON answer of a refused API request: {"ok": false, "error", "message"}."""
    return JSONResponse(
        {"ok": False, "error": code, "message": error_message(lang, code, ext)}, status_code=status
    )


async def set_my_ext(request: Request) -> Response:
    """POST /api/me/ext {"ext"}: the extension a supervisor's listen calls ring."""
    auth = auth_of(request)
    lang = pick_language(request, auth.settings.display.language)
    principal = principal_of(request)
    if principal is None:
        return error_response(401, "UNAUTHORIZED", lang)
    if not principal.is_supervisor:
        return error_response(403, "FORBIDDEN", lang)
    try:
        await require_csrf(request, principal)
    except CsrfError:
        return error_response(403, "CSRF", lang)
    try:
        body: Any = await request.json()
    except ValueError:
        body = None
    ext = valid_ext(body.get("ext")) if isinstance(body, dict) else None
    if ext is None:
        return error_response(400, "BAD_REQUEST", lang)
    if principal.session_id is None:
        auth.demo_ext = ext  # mode "none": one demo principal for the whole process
    else:
        session = auth.sessions.get(principal.session_id)
        if session is None:
            return error_response(401, "UNAUTHORIZED", lang)
        session.ext = ext
    return JSONResponse({"ok": True, "ext": ext})


def routes() -> list[BaseRoute]:
    return [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login_submit, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/api/me/ext", set_my_ext, methods=["POST"]),
    ]
