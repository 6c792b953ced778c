"""Who is asking: the principal of a request, sessions, kiosk tokens, the demo principal.

A session cookie holds only a signed random session id; everything else
(username, role, extension, CSRF token, last use) stays in a table in memory,
so a restart ends every session and logout really ends one.

Below the web layer and `security.py`: it knows cookies and query strings, not routes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from itsdangerous import BadSignature, Signer
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from wallboard.audience import Audience
from wallboard.ratelimit import RateLimiter
from wallboard.settings import Settings

Role = Literal["supervisor", "viewer", "kiosk"]
SESSION_COOKIE = "wb_session"
LOGIN_CSRF_COOKIE = "wb_login_csrf"
# A kiosk token (?token=) is read on the kiosk's own paths and on the JSON API, where
# it identifies a kiosk so that an attempt at an action is refused (403) and audited
# rather than treated as anonymous. Pages other than /kiosk ignore it.
KIOSK_PATHS = frozenset({"/kiosk", "/ws", "/api/state"})
KIOSK_PREFIX = "/api/"


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
        return self.audience.masked

    @property
    def audience(self) -> Audience:
        """What this principal's screens are shown (audience.py)."""
        if self.is_supervisor:
            return Audience.SUPERVISOR
        return Audience.MASKED if self.mask_numbers else Audience.WHOLE


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


