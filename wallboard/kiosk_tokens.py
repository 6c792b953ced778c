"""Kiosk tokens made by supervisors on the board (beside the config's auth.kiosk_tokens,
which keep working): a name, when and by whom it was made, when and from where a TV
last used it, and whether it was revoked. Only a token's SHA-256 is stored (a token is
32 random bytes, so a fast hash is enough); the token itself is shown once, when made.

The table lives in the storage database (wallboard/storage: SQLite at storage.path, or
the PostgreSQL of storage.database_url that every node shares), one row per token and
tenant. The live tokens are also kept in memory, so checking a token on a page load or a
socket costs no database read; a revoke takes effect at once on the node that made it
(web/kiosk_tokens.py closes the TV's sockets), and `refresh` (every few seconds, the
site's scheduler) brings the tokens made or revoked on other nodes. A database that
cannot be reached leaves the tokens known as they are; making or revoking one then
raises `StorageUnavailable`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, Index, Integer, MetaData, String, Table, Text, select, update

from wallboard.storage import Database, Migration, Schema, StorageUnavailable

log = logging.getLogger("wallboard.kiosk_tokens")

NAME_MAX = 60
# A TV reloads and reconnects often; its last use is written at most this often.
SEEN_WRITE_EVERY_MS = 60_000
REFRESH_EVERY_S = 5.0

METADATA = MetaData()
kiosk_tokens = Table(
    "kiosk_tokens", METADATA,
    Column("id", Integer, primary_key=True),
    Column("tenant", String(32), nullable=False),
    Column("name", Text, nullable=False),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("last_seen_at", BigInteger),
    Column("last_seen_ip", Text),
    Column("revoked_at", BigInteger),
    Column("revoked_by", Text),
    Index("kiosk_tokens_tenant", "tenant", "id"),
)
# The table's version in its own table before the storage layer (an SQLite file only).
SQLITE_VERSION = 1
# What that table says once the storage layer's migrations own the table: an older
# wallboard opening the file stops with "upgrade the wallboard".
SQLITE_MOVED = SQLITE_VERSION + 1


class KioskTokenError(Exception):
    """The token table cannot be used as it is; the message says why in one sentence."""


def _first(conn: Connection) -> None:
    """The table; an SQLite file of before the storage layer has it already, of this shape."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS kiosk_tokens_version (version INTEGER NOT NULL)")
        version = int(conn.exec_driver_sql("SELECT version FROM kiosk_tokens_version").scalar() or 0)
        if version > SQLITE_VERSION:
            raise KioskTokenError(f"the kiosk token table is at version {version}, newer than this "
                                  f"wallboard's {SQLITE_VERSION}: upgrade the wallboard")
        conn.exec_driver_sql("DELETE FROM kiosk_tokens_version")
        conn.exec_driver_sql(f"INSERT INTO kiosk_tokens_version (version) VALUES ({SQLITE_MOVED})")
    METADATA.create_all(conn, tables=[kiosk_tokens], checkfirst=True)


SCHEMA = Schema("kiosk_tokens", (Migration(1, _first),))
SCHEMA_VERSION = len(SCHEMA.migrations)


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
    """Every tenant's tokens in one table; `tenant(id)` is one tenant's view. `KioskTokens(db)`
    on the deployment's storage database, or `KioskTokens(path)`: an SQLite file of its own."""

    def __init__(self, where: Database | str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self._own = not isinstance(where, Database)
        self.db = where if isinstance(where, Database) else Database.sqlite(where)
        self._clock = clock
        self._live: dict[str, _Live] = {}  # sha256 -> the live (not revoked) token
        self._tasks: set[asyncio.Future[None]] = set()
        self._revoked: set[int] = set()  # here: a refresh read before the revoke was written keeps them out
        self._open = False

    def tenant(self, tenant: str) -> TenantTokens:
        return TenantTokens(self, tenant)

    async def open(self) -> None:
        """Migrate and read the live tokens; a database that cannot be reached now is read
        by the next `refresh`. A table it cannot use raises KioskTokenError."""
        self._open = True
        try:
            await self.refresh()
        except StorageUnavailable as e:
            log.warning("kiosk tokens made on the board not read for now: %s", e)

    async def refresh(self) -> None:
        """The live tokens as the table holds them now (made or revoked on another node too)."""
        await self.db.ensure(SCHEMA)
        k = kiosk_tokens.c
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(k.id, k.tenant, k.token_sha256, k.last_seen_at, k.last_seen_ip)
                                       .where(k.revoked_at.is_(None)))).all()
        known = self._live
        fresh: dict[str, _Live] = {}
        for id_, tenant, sha, seen_at, seen_ip in rows:
            if id_ in self._revoked:
                continue
            live = known.get(sha)
            if live is not None and live.id == id_:  # keep the newest use seen here
                fresh[sha] = live
            else:
                fresh[sha] = _Live(id_, tenant, seen_at, seen_ip)
        self._live = fresh

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._open = False
        self._live = {}
        if self._own:
            await self.db.close()

    def _now(self) -> int:
        return int(self._clock() * 1000)

    # -- used by TenantTokens -------------------------------------------------------

    def check(self, tenant: str, token: str) -> int | None:
        live = self._live.get(digest(token)) if token else None
        return live.id if live is not None and live.tenant == tenant else None

    def seen(self, tenant: str, token: str, ip: str) -> None:
        live = self._live.get(digest(token))
        if live is None or live.tenant != tenant or not self._open:
            return
        now = self._now()
        live.last_seen_at, live.last_seen_ip = now, ip
        if now - live.written_at < SEEN_WRITE_EVERY_MS:
            return
        live.written_at = now
        task = asyncio.ensure_future(self._write_seen(live.id, now, ip))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def create(self, tenant: str, name: str, by: str) -> tuple[str, dict[str, Any]]:
        token = secrets.token_urlsafe(32)
        sha = digest(token)
        now = self._now()
        await self.db.ensure(SCHEMA)
        async with self.db.begin() as conn:
            done = await conn.execute(kiosk_tokens.insert().values(
                tenant=tenant, name=name, token_sha256=sha, created_at=now, created_by=by))
        key = done.inserted_primary_key
        assert key is not None
        id_ = int(key[0])
        self._live[sha] = _Live(id_, tenant, None, None)
        return token, {"id": id_, "name": name, "created_at": now, "created_by": by,
                       "last_seen_at": None, "last_seen_ip": None, "revoked_at": None, "revoked_by": None}

    async def rows(self, tenant: str) -> list[dict[str, Any]]:
        k = kiosk_tokens.c
        columns = (k.id, k.name, k.created_at, k.created_by, k.last_seen_at, k.last_seen_ip, k.revoked_at,
                   k.revoked_by)
        await self.db.ensure(SCHEMA)
        async with self.db.connect() as conn:
            found = (await conn.execute(select(*columns).where(k.tenant == tenant)
                                        .order_by(k.revoked_at.is_not(None), k.id.desc()))).all()
        rows = [dict(zip((c.name for c in columns), row, strict=True)) for row in found]
        seen = {live.id: live for live in self._live.values() if live.tenant == tenant}
        for row in rows:  # the newest use, also when not yet written
            live = seen.get(row["id"])
            if live is not None and live.last_seen_at and live.last_seen_at > (row["last_seen_at"] or 0):
                row["last_seen_at"], row["last_seen_ip"] = live.last_seen_at, live.last_seen_ip
        return rows

    async def revoke(self, tenant: str, token_id: int, by: str) -> bool:
        for sha, live in list(self._live.items()):
            if live.id == token_id and live.tenant == tenant:
                del self._live[sha]  # refused from now on, before the database has it
        self._revoked.add(token_id)
        k = kiosk_tokens.c
        await self.db.ensure(SCHEMA)
        async with self.db.begin() as conn:
            done = await conn.execute(update(kiosk_tokens)
                                      .where(k.id == token_id, k.tenant == tenant, k.revoked_at.is_(None))
                                      .values(revoked_at=self._now(), revoked_by=by))
        return bool(done.rowcount)

    async def _write_seen(self, token_id: int, now: int, ip: str) -> None:
        k = kiosk_tokens.c
        try:
            async with self.db.begin() as conn:
                await conn.execute(update(kiosk_tokens).where(k.id == token_id)
                                   .values(last_seen_at=now, last_seen_ip=ip))
        except StorageUnavailable:
            pass  # kept in memory, written with the next use a minute on


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
