"""Kiosk tokens made by supervisors on the board (beside the config's auth.kiosk_tokens,
which keep working): a name, when and by whom it was made, when and from where a TV
last used it, and whether it was revoked. Only a token's SHA-256 is stored (a token is
32 random bytes, so a fast hash is enough); the token itself is shown once, when made.

The table lives in the storage database (SQLite at storage.path) with its own schema
version, one row per token and tenant. All SQLite work runs on one dedicated thread, as
the audit log's does (audit.py). The live tokens are also kept in memory, so checking a
token on a page load or a socket costs no disk read; a revoke takes effect at once
(web/kiosk_tokens.py closes the TV's sockets).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

NAME_MAX = 60
# A TV reloads and reconnects often; its last use is written at most this often.
SEEN_WRITE_EVERY_MS = 60_000

# Migration N takes the table from version N to N+1. Append, never edit.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE kiosk_tokens (
      id INTEGER PRIMARY KEY,
      tenant TEXT NOT NULL,
      name TEXT NOT NULL,
      token_sha256 TEXT NOT NULL UNIQUE,
      created_at INTEGER NOT NULL,
      created_by TEXT NOT NULL,
      last_seen_at INTEGER,
      last_seen_ip TEXT,
      revoked_at INTEGER,
      revoked_by TEXT
    );
    CREATE INDEX kiosk_tokens_tenant ON kiosk_tokens (tenant, id);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class KioskTokenError(Exception):
    """The token table cannot be used; the message says why in one sentence."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class _Live:
    id: int
    tenant: str
    last_seen_at: int | None
    last_seen_ip: str | None
    written_at: int = 0


class KioskTokens:
    """Every tenant's tokens in one database; `tenant(id)` is one tenant's view."""

    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._live: dict[str, _Live] = {}  # sha256 -> the live (not revoked) token
        self._tasks: set[asyncio.Future[None]] = set()

    def tenant(self, tenant: str) -> TenantTokens:
        return TenantTokens(self, tenant)

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kiosk-tokens")
        try:
            rows = await self._run(self._open_db)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        self._live = {sha: _Live(id_, tenant, seen_at, seen_ip) for id_, tenant, sha, seen_at, seen_ip in rows}

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._run(self._close_db)
        self._executor.shutdown(wait=True)
        self._executor = None
        self._live = {}

    def _now(self) -> int:
        return int(self._clock() * 1000)

    # -- used by TenantTokens -------------------------------------------------------

    def check(self, tenant: str, token: str) -> int | None:
        live = self._live.get(digest(token)) if token else None
        return live.id if live is not None and live.tenant == tenant else None

    def seen(self, tenant: str, token: str, ip: str) -> None:
        live = self._live.get(digest(token))
        if live is None or live.tenant != tenant or self._executor is None:
            return
        now = self._now()
        live.last_seen_at, live.last_seen_ip = now, ip
        if now - live.written_at < SEEN_WRITE_EVERY_MS:
            return
        live.written_at = now
        task = asyncio.ensure_future(self._run(self._write_seen, live.id, now, ip))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def create(self, tenant: str, name: str, by: str) -> tuple[str, dict[str, Any]]:
        token = secrets.token_urlsafe(32)
        sha = digest(token)
        now = self._now()
        id_ = await self._run(self._insert, tenant, name, sha, now, by)
        self._live[sha] = _Live(id_, tenant, None, None)
        return token, {"id": id_, "name": name, "created_at": now, "created_by": by,
                       "last_seen_at": None, "last_seen_ip": None, "revoked_at": None, "revoked_by": None}

    async def rows(self, tenant: str) -> list[dict[str, Any]]:
        rows = await self._run(self._select, tenant)
        seen = {live.id: live for live in self._live.values() if live.tenant == tenant}
        for row in rows:  # the newest use, also when not yet written
            live = seen.get(row["id"])
            if live is not None and live.last_seen_at and live.last_seen_at > (row["last_seen_at"] or 0):
                row["last_seen_at"], row["last_seen_ip"] = live.last_seen_at, live.last_seen_ip
        return rows

    async def revoke(self, tenant: str, token_id: int, by: str) -> bool:
        for sha, live in list(self._live.items()):
            if live.id == token_id and live.tenant == tenant:
                del self._live[sha]  # refused from now on, before the disk has it
        return await self._run(self._revoke, tenant, token_id, self._now(), by)

    # -- on the database thread ---------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise KioskTokenError("the kiosk token table is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open_db(self) -> list[tuple[Any, ...]]:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as e:
            raise KioskTokenError(f"the storage database {self.path!r} cannot be opened: {e}") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=5000")
            _migrate(db)
            rows = db.execute("SELECT id, tenant, token_sha256, last_seen_at, last_seen_ip FROM kiosk_tokens"
                              " WHERE revoked_at IS NULL").fetchall()
        except BaseException:
            db.close()
            raise
        self._db = db
        return rows

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise KioskTokenError("the kiosk token table is not open")
        return self._db

    def _insert(self, tenant: str, name: str, sha: str, now: int, by: str) -> int:
        cursor = self._conn().execute(
            "INSERT INTO kiosk_tokens (tenant, name, token_sha256, created_at, created_by) VALUES (?, ?, ?, ?, ?)",
            (tenant, name, sha, now, by))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _select(self, tenant: str) -> list[dict[str, Any]]:
        columns = ("id", "name", "created_at", "created_by", "last_seen_at", "last_seen_ip", "revoked_at",
                   "revoked_by")
        rows = self._conn().execute(f"SELECT {', '.join(columns)} FROM kiosk_tokens WHERE tenant = ?"
                                    " ORDER BY revoked_at IS NOT NULL, id DESC", (tenant,)).fetchall()
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def _revoke(self, tenant: str, token_id: int, now: int, by: str) -> bool:
        cursor = self._conn().execute(
            "UPDATE kiosk_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ? AND tenant = ? AND revoked_at IS NULL",
            (now, by, token_id, tenant))
        return cursor.rowcount > 0

    def _write_seen(self, token_id: int, now: int, ip: str) -> None:
        self._conn().execute("UPDATE kiosk_tokens SET last_seen_at = ?, last_seen_ip = ? WHERE id = ?",
                             (now, ip, token_id))


class TenantTokens:
    """One tenant's tokens (Auth holds it: auth.stored_tokens)."""

    def __init__(self, store: KioskTokens, tenant: str) -> None:
        self.store = store
        self.tenant = tenant

    def check(self, token: str) -> int | None:
        """The id of this live token of this tenant, else None."""
        return self.store.check(self.tenant, token)

    def seen(self, token: str, ip: str) -> None:
        self.store.seen(self.tenant, token, ip)

    async def create(self, name: str, by: str) -> tuple[str, dict[str, Any]]:
        return await self.store.create(self.tenant, name, by)

    async def rows(self) -> list[dict[str, Any]]:
        return await self.store.rows(self.tenant)

    async def revoke(self, token_id: int, by: str) -> bool:
        return await self.store.revoke(self.tenant, token_id, by)


def _version(db: sqlite3.Connection) -> int:
    db.execute("CREATE TABLE IF NOT EXISTS kiosk_tokens_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT version FROM kiosk_tokens_version").fetchone()
    return int(row[0]) if row else 0


def _migrate(db: sqlite3.Connection) -> None:
    """Bring the table to SCHEMA_VERSION, one transaction per step."""
    db.execute("BEGIN IMMEDIATE")  # another process opening the same file waits
    try:
        version = _version(db)
        if version > SCHEMA_VERSION:
            raise KioskTokenError(f"the kiosk token table is at version {version}, newer than this "
                                  f"wallboard's {SCHEMA_VERSION}: upgrade the wallboard")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    for step in range(version, SCHEMA_VERSION):
        db.execute("BEGIN IMMEDIATE")
        try:
            if _version(db) == step:  # not done meanwhile by another process
                for statement in MIGRATIONS[step].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("DELETE FROM kiosk_tokens_version")
                db.execute("INSERT INTO kiosk_tokens_version (version) VALUES (?)", (step + 1,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
