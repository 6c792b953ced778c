"""Sessions and budgets shared by every node (cluster.redis_url): the same methods as the
in-memory ones in principal.py and ratelimit.py, kept in Redis under the tenant's scope.

Sessions: `wb:{scope}:session:<h>` (h: a hash of the session id, so a key names no cookie),
a hash of u (username), r (role), x (ext), k (CSRF token), c (created), l (last use),
h (last checked with the PBX), p (the login password, sealed). Its TTL is the idle timeout,
capped by what is left of the absolute lifetime, and a request moves it on at most every
`TOUCH_EVERY_S` (one script does the read and the touch: one round trip per request). Times
are wall-clock seconds: they are compared across processes.

Each node keeps the sessions it has seen (requests, screens) in the `SessionStore` table it
inherits. Its keeper's sweep (sessions.py, every second) calls `refresh`: one pipelined read
of those sessions, so a session ended anywhere (logout, a failed re-check, idle, lifetime)
is gone here within a sweep and its screens on this node close; a role changed by another
node's re-check is taken too. One node asks the PBX about a session per period: it must
win `wb:{scope}:recheck:<h>` (SET NX PX) first.

The password is sealed with AES-GCM under a key derived (HKDF-SHA256) from
server.session_secret, which every node must then share (settings.py refuses redis_url
without it): Redis keeps it at rest — in its dumps, its AOF, its replicas, in front of
whoever may run `redis-cli` there — and a PBX admin password must not be readable from
any of them. The session's key is the associated data: a sealed password pasted into
another session does not open.

Redis down:
- a request: the session as this node last saw it (seen here before the outage), else
  none (not signed in); screens are never closed for it: only a session Redis answers is
  gone ends;
- a login: refused with 503 and a sentence (`SharedUnavailable`): it could be neither
  counted in the shared budgets nor kept where other nodes find it;
- a logout: ended here at once, and deleted in Redis by the first sweep that reaches it;
- login budgets fail closed (above); action budgets fall back to this node's own counts
  (the issue wants actions to keep working while Redis is down; a flood of audit rows is
  still held to the budget per node); so do the socket slots (server.max_sockets_per_session
  per node: the board keeps being served).

Open sockets per session or kiosk token: `wb:{scope}:sockets:<hash>`, a sorted set of this
node's and the others' sockets, each lapsing unless its node renews it (a dead node's free
again within a minute). The anonymous attempts per address stay counted per node: each is
refused at its handshake and costs that node nothing more.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis.asyncio import Redis
from redis.exceptions import RedisError

from wallboard.cluster.keys import Keys
from wallboard.principal import Auth, Credential, Role, Session, SessionStore
from wallboard.ratelimit import ActionBudgets, Budget, LoginBudgets, RateLimiter, SharedUnavailable, Slots

log = logging.getLogger("wallboard.cluster.sessions")

TOUCH_EVERY_S = 5.0  # a session's last use and TTL move on at most this often (Redis traffic)
REDIS_TIMEOUT_S = 1.0  # a request never waits longer than this on Redis
FAILED = (RedisError, OSError, TimeoutError)
T = TypeVar("T")

# The read of a request: the session's fields, and its last use and TTL moved on when older
# than ARGV[2] seconds. KEYS[1] session; ARGV now, touch_every, idle, max_age (<0: none).
FETCH = """
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return false end
local now = tonumber(ARGV[1])
local l, c = 0, now
for i = 1, #h, 2 do
  if h[i] == 'l' then l = tonumber(h[i + 1]) elseif h[i] == 'c' then c = tonumber(h[i + 1]) end
end
if now - l >= tonumber(ARGV[2]) then
  local ttl = tonumber(ARGV[3])
  local max = tonumber(ARGV[4])
  if max >= 0 then ttl = math.min(ttl, c + max - now) end
  if ttl <= 0 then
    redis.call('DEL', KEYS[1])
    return false
  end
  redis.call('HSET', KEYS[1], 'l', ARGV[1])
  redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000))
end
return h
"""

# Fields changed (role, when checked, ext) written only while the session lives: a re-check
# that ends after a logout elsewhere must not bring the session back. KEYS[1]; ARGV f, v, ...
SAVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

# Sliding-window budgets, all or none (ratelimit.Budgets): KEYS one sorted set per budget;
# ARGV now_ms, member, then limit, window_ms per key. Answers 0 (counted) or ms to wait.
TAKE = """
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[1 + 2 * i])
  local window = tonumber(ARGV[2 + 2 * i])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local n = redis.call('ZCARD', key)
  if n >= limit then
    local w = window
    if limit > 0 then
      local e = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
      w = math.max(tonumber(e[2]) + window - now, 1)
    end
    if w > wait then wait = w end
  end
end
if wait == 0 then
  for i, key in ipairs(KEYS) do
    redis.call('ZADD', key, now, ARGV[2])
    redis.call('PEXPIRE', key, ARGV[2 + 2 * i])
  end
end
return wait
"""


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


async def _quick(call: Awaitable[T]) -> T:
    async with asyncio.timeout(REDIS_TIMEOUT_S):
        return await call


async def _command(call: Awaitable[T] | T) -> T:
    """As `_quick`, for the redis-py commands typed "awaitable or not" (the asyncio client's are awaitable)."""
    assert inspect.isawaitable(call)
    return await _quick(call)


class Sealer:
    """AES-GCM with a key derived from server.session_secret, per scope."""

    def __init__(self, secret: bytes, scope: str) -> None:
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=f"wallboard.credential:{scope}".encode()).derive(secret)
        self._aead = AESGCM(key)

    def seal(self, credential: Credential, bound_to: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, credential.reveal().encode(), bound_to.encode())

    def open(self, sealed: bytes, bound_to: str) -> Credential | None:
        try:
            return Credential(self._aead.decrypt(sealed[:12], sealed[12:], bound_to.encode()).decode())
        except (InvalidTag, ValueError, UnicodeDecodeError):
            return None


class RedisSessionStore(SessionStore):
    """`SessionStore` in Redis: this node's table holds the sessions it has seen."""

    def __init__(self, redis: Redis, scope: str, secret: bytes, idle_seconds: float, *,
                 max_age: float | None = None, clock: Callable[[], float] = time.time) -> None:
        super().__init__(idle_seconds, clock=clock, max_age=max_age)
        self.redis = redis
        self.keys = Keys(scope)
        self._sealer = Sealer(secret, scope)
        self._fetch = redis.register_script(FETCH)
        self._save = redis.register_script(SAVE)
        self._ending: set[str] = set()  # ended here while Redis was down: deleted there when back
        self._down_since: float | None = None
        self._phones: set[str] = set()  # every node's supervisors' own extensions, as last read
        self._phones_read = 0.0

    @property
    def phones_key(self) -> str:
        """Hash: <hash of a supervisor session's id> -> the extension it gave (tiles hidden on every node)."""
        return f"wb:{{{self.keys.scope}}}:supervisor-exts"

    def key(self, session_id: str) -> str:
        return f"wb:{{{self.keys.scope}}}:session:{_digest(session_id)}"

    def _recheck_key(self, session_id: str) -> str:
        return f"wb:{{{self.keys.scope}}}:recheck:{_digest(session_id)}"

    def _ttl_ms(self, created: float, now: float) -> int:
        ttl = self.idle_seconds if self.max_age is None else min(self.idle_seconds, created + self.max_age - now)
        return max(1, int(ttl * 1000))

    async def begin(self, username: str, role: Role, ext: str | None, *,
                    credential: Credential | None = None) -> Session:
        session = self.create(username, role, ext, credential=credential)
        key = self.key(session.id)
        fields: dict[str, str | bytes] = {
            "u": username, "r": role, "x": ext or "", "k": session.csrf_token,
            "c": repr(session.created), "l": repr(session.last_seen), "h": repr(session.checked),
        }
        if credential is not None:
            fields["p"] = self._sealer.seal(credential, key)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping=fields)  # type: ignore[arg-type]
                pipe.pexpire(key, self._ttl_ms(session.created, session.created))
                if role == "supervisor" and ext:
                    pipe.hset(self.phones_key, _digest(session.id), ext)
                await _quick(pipe.execute())
        except FAILED as e:
            self.end(session.id)
            self._down(e)
            raise SharedUnavailable("sessions cannot be kept in Redis") from e
        self._up()
        return session

    async def fetch(self, session_id: str) -> Session | None:
        now = self._clock()
        key = self.key(session_id)
        max_age = -1.0 if self.max_age is None else self.max_age
        try:
            found = await _quick(self._fetch(keys=[key], args=[repr(now), TOUCH_EVERY_S, self.idle_seconds,
                                                             max_age]))
        except FAILED as e:
            self._down(e)
            return None if session_id in self._ending else self.get(session_id)  # as last seen here
        self._up()
        if not found:
            self._sessions.pop(session_id, None)
            return None
        fields = {found[i].decode(): found[i + 1] for i in range(0, len(found), 2)}
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = Session(
                id=session_id, username=fields["u"].decode(), role=_role(fields["r"]),
                ext=fields.get("x", b"").decode() or None, csrf_token=fields["k"].decode(),
                last_seen=now, created=float(fields["c"]), checked=float(fields.get("h", b"0")),
                credential=self._open(fields.get("p"), key))
        else:
            _take(session, fields)
        session.last_seen = now
        return session

    def _open(self, sealed: bytes | None, key: str) -> Credential | None:
        if sealed is None:
            return None
        credential = self._sealer.open(sealed, key)
        if credential is None:
            log.warning("a session's password kept in Redis does not open here: is server.session_secret "
                        "the same on every node? Its account is not re-checked by this node")
        return credential

    async def finish(self, session_id: str) -> Session | None:
        ended = self.end(session_id)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.delete(self.key(session_id), self._recheck_key(session_id))
                pipe.hdel(self.phones_key, _digest(session_id))
                await _quick(pipe.execute())
        except FAILED as e:
            self._down(e)
            self._ending.add(session_id)
        return ended

    async def refresh(self) -> list[Session]:
        """The sessions this node knew that ended (here or anywhere), after one read of all
        of them; their roles, checks, exts and last use as Redis has them. Redis down: only
        those this node can tell are over by itself."""
        try:
            if self._ending:
                ending = list(self._ending)
                await _quick(self.redis.delete(*(self.key(s) for s in ending)))
                await _command(self.redis.hdel(self.phones_key, *(_digest(s) for s in ending)))
                self._ending.difference_update(ending)
            known = list(self._sessions.values())
            if known:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for session in known:
                        pipe.hmget(self.key(session.id), ["r", "h", "l", "x"])
                    rows = await _quick(pipe.execute())
            else:
                rows = []
        except FAILED as e:
            self._down(e)
            return self.purge()
        self._up()
        ended = []
        for session, (role, checked, last, ext) in zip(known, rows, strict=True):
            if role is None:
                ended.append(session)
                self._sessions.pop(session.id, None)
                continue
            _take(session, {"r": role, "h": checked, "l": last, "x": ext})
        if self._clock() - self._phones_read >= TOUCH_EVERY_S:
            await self._read_phones()
        return ended + self.purge()

    async def _read_phones(self) -> None:
        """The supervisors' extensions of every node, those of sessions gone dropped (an idle
        session ends by its TTL and tells nobody)."""
        self._phones_read = self._clock()
        try:
            phones = await _command(self.redis.hgetall(self.phones_key))
            if not phones:
                self._phones = set()
                return
            held = list(phones)
            async with self.redis.pipeline(transaction=False) as pipe:
                for digest in held:
                    pipe.exists(f"wb:{{{self.keys.scope}}}:session:{digest.decode()}")
                alive = await _quick(pipe.execute())
            gone = [d for d, live in zip(held, alive, strict=True) if not live]
            if gone:
                await _command(self.redis.hdel(self.phones_key, *gone))
            self._phones = {phones[d].decode() for d, live in zip(held, alive, strict=True) if live}
        except FAILED as e:
            self._down(e)

    def supervisor_exts(self) -> set[str]:
        return super().supervisor_exts() | self._phones

    async def save(self, session: Session) -> None:
        try:
            fields = ["r", session.role, "h", repr(session.checked), "x", session.ext or ""]
            saved = await _quick(self._save(keys=[self.key(session.id)], args=fields))
            if saved and session.role == "supervisor" and session.ext:
                await _command(self.redis.hset(self.phones_key, _digest(session.id), session.ext))
            elif saved:
                await _command(self.redis.hdel(self.phones_key, _digest(session.id)))
        except FAILED as e:
            self._down(e)  # this node has it; the others re-check on their own

    async def claim_recheck(self, session: Session, seconds: float) -> bool:
        try:
            won = await _quick(self.redis.set(self._recheck_key(session.id), b"1", nx=True,
                                              px=int(seconds * 1000)))
        except FAILED as e:
            self._down(e)
            return True  # the PBX can be asked without Redis: each node asks for itself
        return bool(won)

    def _down(self, error: BaseException) -> None:
        if self._down_since is None:
            self._down_since = self._clock()
            log.warning("Redis cannot be reached for sessions (%s): sessions seen on this node are kept as they "
                        "were, new logins are refused until it is back", str(error) or type(error).__name__)

    def _up(self) -> None:
        if self._down_since is not None:
            log.info("Redis is back for sessions after %.1f s", self._clock() - self._down_since)
            self._down_since = None


def _role(raw: bytes | None) -> Role:
    return "supervisor" if raw == b"supervisor" else "viewer"


def _take(session: Session, fields: Mapping[str, bytes | None]) -> None:
    """What another node may have changed: the role, the last check, the ext, the last use."""
    if (role := fields.get("r")) is not None:
        session.role = _role(role)
    if (checked := fields.get("h")) is not None:
        session.checked = max(session.checked, float(checked))
    if (last := fields.get("l")) is not None:
        session.last_seen = max(session.last_seen, float(last))
    if (ext := fields.get("x")) is not None:
        session.ext = ext.decode() or None


class _RedisBudgets:
    """The all-or-none sliding windows of ratelimit.Budgets, in Redis (one script)."""

    def __init__(self, redis: Redis, scope: str, kind: str, budgets: Mapping[str, Budget]) -> None:
        self.redis = redis
        self.prefix = f"wb:{{{Keys(scope).scope}}}:limit:{kind}:"
        self.shared = dict(budgets)
        self._take = redis.register_script(TAKE)
        self._n = 0

    def _key(self, name: str, key: str) -> str:
        return self.prefix + name + ":" + _digest(key)

    async def take_shared(self, keys: Mapping[str, str]) -> float:
        """0 (counted) or the seconds to wait; a Redis error is raised."""
        self._n += 1
        args: list[Any] = [int(time.time() * 1000), f"{os.getpid()}:{self._n}:{os.urandom(4).hex()}"]
        for name in keys:
            args += [self.shared[name].limit, int(self.shared[name].window * 1000)]
        wait = await _quick(self._take(keys=[self._key(n, k) for n, k in keys.items()], args=args))
        return int(wait) / 1000

    async def refund_shared(self, keys: Mapping[str, str]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for name, key in keys.items():
                pipe.zpopmax(self._key(name, key))
            await _quick(pipe.execute())


class RedisRateLimiter(RateLimiter):
    """A `RateLimiter` counted across every node (the supervisors' actions per minute). Fail
    open to this node's own count, as the action budgets."""

    def __init__(self, redis: Redis, scope: str, kind: str, window: float) -> None:
        super().__init__(window, clock=time.time)
        self.redis = redis
        self.prefix = f"wb:{{{Keys(scope).scope}}}:limit:{kind}:"
        self._take = redis.register_script(TAKE)
        self._n = 0

    async def hit_async(self, key: str, limit: int) -> bool:
        self._n += 1
        member = f"{os.getpid()}:{self._n}:{os.urandom(4).hex()}"
        try:
            wait = await _quick(self._take(keys=[self.prefix + _digest(key)],
                                           args=[int(time.time() * 1000), member, limit, int(self.window * 1000)]))
        except FAILED:
            return self.hit(key, limit)
        return int(wait) == 0


class RedisLoginBudgets(LoginBudgets):
    """Login budgets counted across every node. Fail closed: SharedUnavailable when Redis
    cannot count (a login then is refused anyway: its session could not be kept)."""

    def __init__(self, redis: Redis, scope: str) -> None:
        super().__init__(clock=time.time)
        self._redis = _RedisBudgets(redis, scope, "login", self.budgets)

    async def attempt_async(self, address: str, username: str) -> float:
        try:
            return await self._redis.take_shared(self._keys(address, username))
        except FAILED as e:
            raise SharedUnavailable("login budgets cannot be counted in Redis") from e

    async def succeeded_async(self, address: str, username: str) -> None:
        try:
            await self._redis.refund_shared(self._keys(address, username))
        except FAILED as e:
            raise SharedUnavailable("login budgets cannot be counted in Redis") from e


class RedisActionBudgets(ActionBudgets):
    """Action budgets counted across every node. Fail open to this node's own counts: while
    Redis is down actions keep working (and audited), a flood held per node."""

    def __init__(self, redis: Redis, scope: str) -> None:
        super().__init__(clock=time.time)
        self._redis = _RedisBudgets(redis, scope, "action", self.budgets)
        self._down = False

    async def attempt_async(self, principal: str, address: str) -> float:
        try:
            wait = await self._redis.take_shared({"principal": principal, "address": address})
        except FAILED as e:
            if not self._down:
                log.warning("Redis cannot be reached for action budgets (%s): each node counts its own",
                            str(e) or type(e).__name__)
            self._down = True
            return self.attempt(principal, address)
        self._down = False
        return wait


# One more open socket for a session or kiosk token, within the limit of all nodes together:
# KEYS[1] a sorted set of the open ones (member: node's own id, score: when it lapses unless
# renewed); ARGV now_ms, limit, member, lapses_ms. 1: taken; 0: the limit is reached.
ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
"""
SLOT_LAPSES_S = 60.0  # a slot of a node that died is free again after this
RENEW_EVERY_S = 20.0


class RedisSlots(Slots):
    """Open sockets per session or kiosk token, counted across every node. Each node renews
    its own slots (the keeper's sweep): a node that dies frees them within SLOT_LAPSES_S.
    Redis down: a socket is counted by this node alone (the cap falls back to per node)."""

    def __init__(self, redis: Redis, scope: str) -> None:
        super().__init__()
        self.redis = redis
        self.prefix = f"wb:{{{Keys(scope).scope}}}:sockets:"
        self._acquire = redis.register_script(ACQUIRE)
        self._held: dict[str, list[str]] = {}  # key -> members of this node's sockets in Redis
        self._n = 0
        self._id = os.urandom(6).hex()
        self._renewed = time.monotonic()
        self._releasing: set[asyncio.Task[Any]] = set()

    def _key(self, key: str) -> str:
        return self.prefix + _digest(key)

    async def acquire_async(self, key: str, limit: int) -> bool:
        self._n += 1
        member = f"{self._id}:{self._n}"
        now = int(time.time() * 1000)
        try:
            taken = await _quick(self._acquire(keys=[self._key(key)],
                                               args=[now, limit, member, now + int(SLOT_LAPSES_S * 1000)]))
        except FAILED:
            return self.acquire(key, limit)  # this node's own count
        if taken:
            self._held.setdefault(key, []).append(member)
        return bool(taken)

    async def release_async(self, key: str) -> None:
        held = self._held.get(key)
        if not held:
            self.release(key)
            return
        member = held.pop()
        if not held:
            del self._held[key]
        # Not awaited: a closing socket (maybe cancelled) does not wait on Redis; a slot left
        # behind lapses by itself.
        task = asyncio.get_running_loop().create_task(self._forget(key, member))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def _forget(self, key: str, member: str) -> None:
        with contextlib.suppress(*FAILED):
            await _quick(self.redis.zrem(self._key(key), member))

    async def renew(self) -> None:
        if time.monotonic() - self._renewed < RENEW_EVERY_S or not self._held:
            return
        self._renewed = time.monotonic()
        lapses = int((time.time() + SLOT_LAPSES_S) * 1000)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key, members in self._held.items():
                    pipe.zadd(self._key(key), dict.fromkeys(members, lapses), xx=True)
                    pipe.pexpireat(self._key(key), lapses)
                await _quick(pipe.execute())
        except FAILED as e:
            log.warning("Redis cannot be reached to renew this node's socket slots (%s)", str(e) or type(e).__name__)


def share(auth: Auth, redis: Redis) -> None:
    """Make `auth` (one tenant's) keep its sessions and budgets in Redis, shared by every node."""
    settings = auth.settings
    auth.sessions = RedisSessionStore(redis, auth.scope, settings.server.session_secret.encode(),
                                      settings.auth.session_idle_minutes * 60,
                                      max_age=settings.auth.session_max_hours * 3600, clock=auth.clock)
    auth.login_budgets = RedisLoginBudgets(redis, auth.scope)
    auth.action_budgets = RedisActionBudgets(redis, auth.scope)
    auth.sockets = RedisSlots(redis, auth.scope)
