"""Who is asking: the principal of a request, sessions, kiosk tokens, the demo principal.

A session cookie holds only a signed random session id; everything else
(username, role, extension, CSRF token, last use) stays in a table in memory,
so a restart ends every session and logout really ends one.

A session ends when unused for `auth.session_idle_minutes`, and in any case
`auth.session_max_hours` after its login. While it lives, the account is asked
again of the PBX (sessions.py), with the password given at login, kept for
that in a `Credential`: the PBX has no other way to tell an account's level (its
`POST /v1/auth` is the only call that answers it), and a supervisor demoted or
removed on the PBX must stop being one here.

Below the web layer and `security.py`: it knows cookies and query strings, not routes.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from itsdangerous import BadSignature, Signer
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response

from wallboard.audience import Audience
from wallboard.kiosk_tokens import TenantTokens
from wallboard.ratelimit import ActionBudgets, LoginBudgets, RateLimiter, Slots
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


class Credential:
    """A password kept to ask the PBX again: never in a repr, a str, a log line or a pickle.
    (It lives as long as its session, in this process's memory, beside the PBX API key
    that the process holds anyway.)"""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Credential('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a credential is not pickled")


@dataclass(slots=True)
class Session:
    id: str = field(repr=False)
    username: str
    role: Role
    ext: str | None
    csrf_token: str = field(repr=False)
    last_seen: float
    created: float = 0.0
    checked: float = 0.0  # when the PBX last said what the account is
    recheck_after: float = 0.0  # the PBX did not answer: not asked again in the background before this
    credential: Credential | None = field(default=None, repr=False)


class SessionStore:
    """The server side of sessions: {session_id: Session}, with an idle timeout and an
    absolute lifetime (`max_age`, seconds after creation; None: none)."""

    def __init__(self, idle_seconds: float, *, clock: Callable[[], float] = time.monotonic,
                 max_age: float | None = None) -> None:
        self.idle_seconds = idle_seconds
        self.max_age = max_age
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def create(self, username: str, role: Role, ext: str | None, *,
               credential: Credential | None = None) -> Session:
        self.purge()
        now = self._clock()
        session = Session(
            id=secrets.token_urlsafe(32), username=username, role=role, ext=ext,
            csrf_token=secrets.token_urlsafe(32), last_seen=now, created=now, checked=now,
            credential=credential,
        )
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str) -> Session | None:
        """The live session, marked as used now; None when unknown, idle too long or too old."""
        session = self.peek(session_id)
        if session is not None:
            session.last_seen = self._clock()
        return session

    def peek(self, session_id: str) -> Session | None:
        """The live session, not marked as used (for upkeep, not for a request)."""
        session = self._sessions.get(session_id)
        if session is None:
            return None
        if self._over(session, self._clock()):
            del self._sessions[session_id]
            return None
        return session

    def end(self, session_id: str) -> Session | None:
        return self._sessions.pop(session_id, None)

    def purge(self) -> list[Session]:
        """End every session idle too long or past its lifetime; the ones ended."""
        now = self._clock()
        over = [s for s in self._sessions.values() if self._over(s, now)]
        for session in over:
            del self._sessions[session.id]
        return over

    def supervisor_exts(self) -> set[str]:
        """The extensions live supervisor sessions gave as their own: their phones, not agents."""
        return {s.ext for s in self._sessions.values() if s.role == "supervisor" and s.ext}

    def roles(self) -> dict[str, Role]:
        """Every live session's role, by id (after a purge)."""
        return {sid: s.role for sid, s in self._sessions.items()}

    def due(self, every: float) -> list[Session]:
        """The live sessions the PBX has not been asked about for `every` seconds."""
        cutoff = self._clock() - every
        return [s for s in self._sessions.values() if s.credential is not None and s.checked <= cutoff]

    def _over(self, session: Session, now: float) -> bool:
        return now - session.last_seen > self.idle_seconds or (
            self.max_age is not None and now - session.created > self.max_age)

    # -- the same, for callers that may have to wait: a store shared by several processes
    # (cluster/shared_auth.py) does its I/O here; this one answers at once.

    async def fetch(self, session_id: str) -> Session | None:
        """As `get`: the live session, marked as used now."""
        return self.get(session_id)

    async def begin(self, username: str, role: Role, ext: str | None, *,
                    credential: Credential | None = None) -> Session:
        """As `create`. SharedUnavailable when a shared store cannot be written."""
        return self.create(username, role, ext, credential=credential)

    async def finish(self, session_id: str) -> Session | None:
        """As `end`."""
        return self.end(session_id)

    async def refresh(self) -> list[Session]:
        """The sessions that ended since the last call (here: idle or too old, as `purge`;
        a shared store adds those ended on other processes, and brings in their changes)."""
        return self.purge()

    async def save(self, session: Session) -> None:
        """Keep what changed in `session` (role, ext, when checked) where every process sees it."""

    async def claim_recheck(self, session: Session, seconds: float) -> bool:
        """Whether this process is the one to ask the PBX about `session` now (one asks per period)."""
        return True


class Auth:
    """Settings, sessions and signing keys: everything that decides who a connection is."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic,
                 scope: str = "default", cookie_path: str = "/") -> None:
        self.settings = settings
        # One tenant's sessions: a cookie of another tenant is unknown here and signed apart,
        # and the browser sends each only to its own tenant's paths.
        self.scope = scope
        self.cookie_path = cookie_path
        self.sessions = SessionStore(settings.auth.session_idle_minutes * 60, clock=clock,
                                     max_age=settings.auth.session_max_hours * 3600)
        self.clock = clock
        # An empty session_secret means a random key: sessions end on restart.
        self._secret = settings.server.session_secret.encode() or secrets.token_bytes(32)
        self._signer = Signer(self._secret, salt=f"wallboard.session:{scope}")
        self.secure_cookies = settings.server.public_url.lower().startswith("https://")
        # In mode "none" there is no session to hold a token; this one is per
        # process and readable only by our own pages, which is all CSRF needs.
        self._demo_csrf = self._mac("demo-csrf")
        self.demo_ext = settings.auth.demo_ext
        self._kiosk_tokens = [tok.encode() for tok in settings.auth.kiosk_tokens if tok]
        # Those supervisors make on the board (kiosk_tokens.py), set by the site that owns the table.
        self.stored_tokens: TenantTokens | None = None
        # How often and how many: logins, audited attempts, sockets (web/login.py, actions.py, ws.py).
        self.login_budgets = LoginBudgets(clock=clock)
        self.action_budgets = ActionBudgets(clock=clock)
        self.sockets = Slots()  # open /ws per session or kiosk token
        self.anonymous_sockets = RateLimiter(60.0, clock=clock)  # /ws attempts without a principal

    def _mac(self, text: str) -> str:
        return hmac.new(self._secret, text.encode(), hashlib.sha256).hexdigest()

    @property
    def mode(self) -> str:
        return self.settings.auth.mode

    # -- who is asking ----------------------------------------------------------

    def principal_for(self, conn: HTTPConnection) -> Principal | None:
        """Who is asking, from this process's sessions (`principal` also asks a shared store)."""
        found = self._without_session(conn)
        if found is not None:
            return found if isinstance(found, Principal) else None
        return self._of_session(self.session_of(conn))

    async def principal(self, conn: HTTPConnection) -> Principal | None:
        """Who is asking (PartsMiddleware): as `principal_for`, the session looked up in the
        store wherever it is kept (Redis with cluster.redis_url)."""
        found = self._without_session(conn)
        if found is not None:
            return found if isinstance(found, Principal) else None
        session_id = self.session_id_of(conn)
        return self._of_session(None if session_id is None else await self.sessions.fetch(session_id))

    def _without_session(self, conn: HTTPConnection) -> Principal | bool | None:
        """A kiosk or the demo principal; False: no session cookie; None: look up the session."""
        mask = self.settings.display.mask_phone_numbers
        token = conn.query_params.get("token")
        path = _route_path(conn)
        # A kiosk token is read-only in every mode, the open demo included: a TV
        # on the wall never gets the action buttons or whole numbers.
        if token and (path in KIOSK_PATHS or path.startswith(KIOSK_PREFIX)) \
                and self.kiosk_token_valid(token):
            return Principal("kiosk", "kiosk", None, None, "", mask)
        if self.mode == "none":
            return Principal("supervisor", "demo", self.demo_ext, None, self._demo_csrf, mask)
        return False if not conn.cookies.get(SESSION_COOKIE) else None

    def _of_session(self, session: Session | None) -> Principal | None:
        if session is None:
            return None
        return Principal(session.role, session.username, session.ext, session.id,
                         session.csrf_token, self.settings.display.mask_phone_numbers)

    def kiosk_token_valid(self, token: str) -> bool:
        # Compare against every token without stopping at a match, in constant
        # time each, so timing tells nothing about which token or how much matched.
        given = token.encode()
        found = False
        for candidate in self._kiosk_tokens:
            found |= hmac.compare_digest(given, candidate)
        # A stored token is looked up by its hash: timing tells nothing of the token.
        return found or self.stored_token_id(token) is not None

    def stored_token_id(self, token: str) -> int | None:
        """The id of a live token made on the board, else None (a config token has none)."""
        return self.stored_tokens.check(token) if self.stored_tokens is not None and token else None

    def session_of(self, conn: HTTPConnection) -> Session | None:
        session_id = self.session_id_of(conn)
        return None if session_id is None else self.sessions.get(session_id)

    def session_id_of(self, conn: HTTPConnection) -> str | None:
        """The session id of the signed cookie, if it is one of ours."""
        cookie = conn.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        try:
            return self._signer.unsign(cookie).decode()
        except (BadSignature, UnicodeDecodeError):
            return None

    # -- cookies ----------------------------------------------------------------

    def set_session_cookie(self, response: Response, session: Session) -> None:
        value = self._signer.sign(session.id.encode()).decode()
        response.set_cookie(SESSION_COOKIE, value, httponly=True, samesite="lax",
                            secure=self.secure_cookies, path=self.cookie_path)

    def clear_session_cookie(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax",
                               secure=self.secure_cookies, path=self.cookie_path)

    def login_csrf(self, request: Request) -> tuple[str, str]:
        """(cookie value, form token) for the login form, before any session exists.

        A signed double submit: the form token is an HMAC of the cookie, so a
        site that can plant a cookie still cannot make a matching form token.
        """
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        return cookie, self._mac("login-csrf:" + cookie)

    def set_login_csrf_cookie(self, response: Response, cookie: str) -> None:
        response.set_cookie(LOGIN_CSRF_COOKIE, cookie, httponly=True, samesite="strict",
                            secure=self.secure_cookies, path=self.cookie_path + "login")


def _route_path(conn: HTTPConnection) -> str:
    """The path within the tenant: /kiosk for /t/{id}/kiosk (its prefix is the root_path)."""
    path: str = conn.scope["path"]
    root: str = conn.scope.get("root_path", "")
    return path[len(root):] or "/" if root and path.startswith(root) else path
