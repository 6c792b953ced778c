"""`Database`: SQLAlchemy Core's asyncio engine over aiosqlite or asyncpg, versioned
migrations per table group, and one exception for "the database cannot be reached".
See the package's docstring for how a module declares its tables."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import zlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, Integer, MetaData, String, Table, event, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from wallboard.settings import Settings

log = logging.getLogger("wallboard.storage")

CONNECT_TIMEOUT_S = 5.0
COMMAND_TIMEOUT_S = 30.0

_VERSIONS_METADATA = MetaData()
versions = Table(
    "storage_migrations", _VERSIONS_METADATA,
    Column("group_name", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("applied_at", BigInteger, nullable=False),  # epoch ms
)


class StorageUnavailable(Exception):
    """The database cannot be reached (or answered with a connection-level error); the
    message is one plain sentence naming where, never the password."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    up: Callable[[Connection], None]  # runs on the synchronous side of the connection (run_sync)


@dataclass(frozen=True, slots=True)
class Schema:
    group: str
    migrations: tuple[Migration, ...]

    def __post_init__(self) -> None:
        numbers = [m.version for m in self.migrations]
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError(f"{self.group}: migrations must be numbered 1, 2, 3... in order, not {numbers}")


def create_tables(*tables: Table) -> Callable[[Connection], None]:
    """A migration step creating these tables (and their indexes) as they are declared."""
    def up(conn: Connection) -> None:
        for table in tables:
            table.create(conn)
    return up


def sql(*statements: str) -> Callable[[Connection], None]:
    """A migration step of plain SQL statements, written for both engines."""
    def up(conn: Connection) -> None:
        for statement in statements:
            conn.exec_driver_sql(statement)
    return up


def database_url(settings: Settings) -> str:
    """The SQLAlchemy URL: PostgreSQL when storage.database_url is set, else SQLite at storage.path."""
    configured = settings.storage.database_url.strip()
    if not configured:
        return f"sqlite+aiosqlite:///{Path(settings.storage.path).resolve()}"
    url = make_url(configured)
    if url.drivername in ("postgresql", "postgres", "postgresql+asyncpg"):
        return url.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"storage.database_url must start with postgresql://, not {url.drivername}://")


def _where(url: URL) -> str:
    if url.get_backend_name() == "sqlite":
        return f"SQLite at {url.database}"
    return f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def _reason(error: BaseException) -> str:
    cause: BaseException = error
    if isinstance(error, sa_exc.DBAPIError) and error.orig is not None:
        cause = error.orig
    text_ = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    if isinstance(cause, ConnectionRefusedError) or "Connect call failed" in text_:
        return "the connection was refused"
    if isinstance(cause, TimeoutError | asyncio.TimeoutError):
        return f"no answer within {CONNECT_TIMEOUT_S:g} s"
    return text_.rstrip(".")


def _unreachable(error: BaseException) -> bool:
    if isinstance(error, OSError | TimeoutError | asyncio.TimeoutError | sa_exc.DisconnectionError):
        return True
    if isinstance(error, sa_exc.TimeoutError):  # the pool's
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        if isinstance(error, sa_exc.InterfaceError):
            return True
        if isinstance(error, sa_exc.OperationalError):
            # sqlite3 calls a syntax error "operational" too: only these mean the file cannot be used.
            return error.orig is None or not _is_sqlite(error.orig) or any(
                words in str(error.orig).lower() for words in _SQLITE_UNUSABLE)
    return False


_SQLITE_UNUSABLE = ("unable to open", "locked", "disk i/o", "readonly", "malformed", "full", "not a database")


def _is_sqlite(error: BaseException) -> bool:
    return type(error).__module__.startswith(("sqlite3", "aiosqlite"))


class Database:
    """One engine per process and database URL; `open` before use, `close` at the end."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        self.dialect = self.url.get_backend_name()  # "sqlite" or "postgresql"
        self.where = _where(self.url)
        self._engine: AsyncEngine | None = None
        self._migrated: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(database_url(settings))

    @classmethod
    def sqlite(cls, path: str | os.PathLike[str]) -> Database:
        """An SQLite file of its own (tests, tools)."""
        return cls(f"sqlite+aiosqlite:///{Path(path).resolve()}")

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = self._create_engine()
        return self._engine

    def _create_engine(self) -> AsyncEngine:
        if self.dialect == "sqlite":
            path = Path(self.url.database or "")
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not path.exists():
                path.touch(mode=0o600)
            os.chmod(path, 0o600)  # SQLite gives its -wal and -shm files the database's mode
            engine = create_async_engine(self.url, connect_args={"timeout": CONNECT_TIMEOUT_S})
            _sqlite_transactions(engine)
            return engine
        return create_async_engine(
            self.url, pool_pre_ping=True, pool_timeout=CONNECT_TIMEOUT_S,
            connect_args={"timeout": CONNECT_TIMEOUT_S, "command_timeout": COMMAND_TIMEOUT_S})

    async def open(self) -> None:
        """Reach the database once: StorageUnavailable when it cannot be."""
        async with self.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @asynccontextmanager
    async def _translated(self) -> AsyncIterator[None]:
        try:
            yield
        except StorageUnavailable:
            raise
        except Exception as error:
            if not _unreachable(error):
                raise
            raise StorageUnavailable(
                f"The storage database ({self.where}) cannot be used: {_reason(error)}.") from error

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction, committed at the end of the block (SQLite: BEGIN IMMEDIATE,
        so two writers queue on the busy timeout instead of failing on the upgrade)."""
        async with self._translated(), self.engine.connect() as conn:
            await conn.execution_options(wallboard_write=True)
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads."""
        async with self._translated(), self.engine.connect() as conn:
            yield conn

    async def upsert(self, conn: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]],
                     keys: Sequence[str]) -> None:
        """Insert the rows, replacing the other columns of a row whose `keys` exist already."""
        if not rows:
            return
        insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        stmt = insert(table)
        others = [c.name for c in table.columns if c.name not in keys and c.name in rows[0]]
        stmt = stmt.on_conflict_do_update(index_elements=list(keys),
                                          set_={name: stmt.excluded[name] for name in others})
        await conn.execute(stmt, [dict(r) for r in rows])

    async def version(self, group: str) -> int:
        async with self.connect() as conn:
            if not await conn.run_sync(lambda c: c.dialect.has_table(c, versions.name)):
                return 0
            found = (await conn.execute(select(versions.c.version).where(versions.c.group_name == group))).scalar()
        return int(found or 0)

    async def ensure(self, schema: Schema) -> None:
        """`migrate` on a group's first use through this Database: a module calls it before
        each use, so a database that could not be reached at start is migrated once it is."""
        if schema.group not in self._migrated:
            await self.migrate(schema)
            self._migrated.add(schema.group)

    async def migrate(self, schema: Schema) -> int:
        """Run the group's migrations the database has not seen; the version it is at after."""
        async with self.begin() as conn:
            if self.dialect == "postgresql":
                # Nodes starting together: one migrates, the others wait and find it done.
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": zlib.crc32(b"wallboard-migrations")})
            await conn.run_sync(lambda c: versions.create(c, checkfirst=True))
            row = (await conn.execute(
                select(versions.c.version).where(versions.c.group_name == schema.group))).scalar()
            current = int(row or 0)
            for migration in schema.migrations[current:]:
                await conn.run_sync(migration.up)
                current = migration.version
                log.info("storage: %s migrated to version %d (%s)", schema.group, current, self.where)
            await self.upsert(conn, versions, [{"group_name": schema.group, "version": current,
                                                "applied_at": int(time.time() * 1000)}], ["group_name"])
        return current


def _sqlite_transactions(engine: AsyncEngine) -> None:
    """SQLAlchemy's documented fix for pysqlite's transactions (and so aiosqlite's): the
    driver's own BEGIN skips DDL, so migrations would not be atomic; we emit BEGIN ourselves."""
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(CONNECT_TIMEOUT_S * 1000)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("wallboard_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
