"""The audit log: one SQLite row per supervisor action attempt, allowed or refused.

A row is written before the PBX is called and completed once it answers; the
database refuses any other change to a row (see the trigger in the first
migration), so the log can be trusted after the fact. All SQLite work runs on
one dedicated thread: the event loop never waits on the disk, and the
connection is only ever touched by the thread that opened it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import time as clock_time
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

COLUMNS = (
    "id", "at", "username", "role", "ip", "action", "call_id", "agent_ext", "target_ext",
    "phone", "allowed", "result", "error",
)

# Migration N takes the database from schema version N to N+1. Append, never edit.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,            -- epoch ms, UTC
        username TEXT NOT NULL,
        role TEXT NOT NULL,
        ip TEXT NOT NULL,
        action TEXT NOT NULL,           -- listen | whisper | barge | transfer | call
        call_id TEXT,
        agent_ext TEXT,                 -- the agent on the call, when known
        target_ext TEXT,                -- the supervisor's ext, or the transfer target
        phone TEXT,                     -- the number dialled by click-to-call
        allowed INTEGER NOT NULL,       -- 0: refused before reaching the PBX
        result TEXT,                    -- NULL until done, then "ok" or an error code
        error TEXT
    );
    CREATE INDEX audit_at ON audit (at);
    CREATE INDEX audit_username_at ON audit (username, at);
    -- Rows are evidence: only the result may be written, and only once.
    CREATE TRIGGER audit_result_only BEFORE UPDATE ON audit
    WHEN OLD.result IS NOT NULL
      OR NEW.id IS NOT OLD.id OR NEW.at IS NOT OLD.at OR NEW.username IS NOT OLD.username
      OR NEW.role IS NOT OLD.role OR NEW.ip IS NOT OLD.ip OR NEW.action IS NOT OLD.action
      OR NEW.call_id IS NOT OLD.call_id OR NEW.agent_ext IS NOT OLD.agent_ext
      OR NEW.target_ext IS NOT OLD.target_ext OR NEW.phone IS NOT OLD.phone
      OR NEW.allowed IS NOT OLD.allowed
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class AuditError(Exception):
    """The audit database cannot be used; the message says why in one sentence."""


class AuditLog:
    def __init__(self, path: str | Path, *, tz: tzinfo = UTC,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self.tz = tz  # days in ?date= filters are local days in this zone
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit")
        try:
            await self._run(self._open_db)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self) -> None:
        if self._executor is None:
            return
        await self._run(self._close_db)
        self._executor.shutdown(wait=True)
        self._executor = None

    async def begin(self, *, username: str, role: str, ip: str, action: str,
                    call_id: str | None = None, agent_ext: str | None = None,
                    target_ext: str | None = None, phone: str | None = None,
                    allowed: bool = True, result: str | None = None,
                    error: str | None = None) -> int:
        """Write the row of one attempt and return its id.

        An allowed attempt is written with no result, before the PBX is asked;
        a refused one is written whole (allowed=False, result=its error code).
        """
        row = (int(self._clock() * 1000), username, role, ip, action, call_id, agent_ext,
               target_ext, phone, int(allowed), result, error)
        return await self._run(self._insert, row)

    async def finish(self, row_id: int, result: str, error: str | None = None) -> None:
        """Record the outcome of an allowed attempt: "ok" or the PBX's error code."""
        await self._run(self._update, row_id, result, error)

    async def query(self, *, date: str | None = None, username: str | None = None,
                    limit: int = 200) -> list[dict[str, Any]]:
        """Rows newest first; `date` is YYYY-MM-DD (a local day), ValueError otherwise."""
        where: list[str] = []
        params: list[Any] = []
        if date:
            start, end = self._day_bounds(date)
            where.append("at >= ? AND at < ?")
            params += [start, end]
        if username:
            where.append("username = ?")
            params.append(username)
        sql = f"SELECT {', '.join(COLUMNS)} FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY at DESC, id DESC LIMIT ?"
        params.append(max(1, min(limit, 10_000)))
        return await self._run(self._select, sql, tuple(params))

    def _day_bounds(self, day: str) -> tuple[int, int]:
        parsed = datetime.strptime(day, "%Y-%m-%d").date()
        start = datetime.combine(parsed, clock_time(), self.tz)
        end = datetime.combine(parsed + timedelta(days=1), clock_time(), self.tz)
        return int(start.timestamp() * 1000), int(end.timestamp() * 1000)

    # -- on the database thread ---------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise AuditError("the audit log is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open_db(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error as e:
            raise AuditError(f"the audit database {self.path!r} cannot be opened: {e}") from None
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=5000")
            _migrate(db, self.path)
        except BaseException:
            db.close()
            raise
        self._db = db

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise AuditError("the audit log is not open")
        return self._db

    def _insert(self, row: tuple[Any, ...]) -> int:
        cursor = self._conn().execute(
            f"INSERT INTO audit ({', '.join(COLUMNS[1:])}) VALUES ({', '.join('?' * len(row))})",
            row,
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _update(self, row_id: int, result: str, error: str | None) -> None:
        self._conn().execute(
            "UPDATE audit SET result = ?, error = ? WHERE id = ? AND result IS NULL",
            (result, error, row_id),
        )

    def _select(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        rows = self._conn().execute(sql, params).fetchall()
        out = [dict(zip(COLUMNS, row, strict=True)) for row in rows]
        for row in out:
            row["allowed"] = bool(row["allowed"])
        return out


def schema_version(db: sqlite3.Connection) -> int:
    """0 for a new database (no version table yet)."""
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def _migrate(db: sqlite3.Connection, path: str) -> None:
    """Bring the database to SCHEMA_VERSION, one transaction per step."""
    version = schema_version(db)
    if version > SCHEMA_VERSION:
        raise AuditError(
            f"the audit database {path!r} has schema version {version}, newer than this "
            f"program knows ({SCHEMA_VERSION}); use a newer wallboard or another storage.path"
        )
    for step in range(version, SCHEMA_VERSION):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[step]):
                db.execute(statement)
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (step + 1,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    # executescript() would commit our transaction; split instead. A trigger's
    # body holds semicolons, so keep reading until SQLite says it is complete.
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return [s for s in statements if s]

