"""The audit log: one SQLite row per supervisor action attempt, allowed or refused.

A row is written before the PBX is called and completed once it answers; the
database refuses any other change to a row (see the triggers), so the log can be
trusted after the fact. Repeated refusals fold: a refused attempt of the same
person (username and role), from the same address, for the same action and with
the same result as the newest such row, less than `FOLD_WINDOW_MS` after that row
began, adds one to its `count` and moves its `last_at` instead of writing a row
(the row keeps its first attempt's call, extensions and number). So a kiosk or a
viewer pressing a button in a loop costs a row per ten minutes, not a row per
request, and nothing is hidden: the row says how many and when from and to, and
any other row in between still stands on its own. The trigger lets only such a
fold touch a finished row.

All SQLite work runs on one dedicated thread: the event loop never waits on the
disk, and the connection is only ever touched by the thread that opened it. The
files (the database, its -wal and -shm) are readable by their owner only.
"""

from __future__ import annotations

import asyncio
import os
import re
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
    "phone", "allowed", "result", "error", "tenant",
)
# Read back with every row: how many attempts it stands for, and when the last one was.
FOLD_COLUMNS = ("count", "last_at")
# A fold stays open this long after its first attempt; the second migration's trigger
# holds the same number.
FOLD_WINDOW_MS = 600_000
# ?result= takes one of these words, or an error code as the log writes it.
RESULT_WORDS = frozenset({"ok", "refused", "failed", "pending"})
RESULT_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

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
    """
    ALTER TABLE audit ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE audit ADD COLUMN last_at INTEGER;   -- epoch ms of the last attempt folded in
    CREATE INDEX audit_fold ON audit (username, ip, action, result, id);
    CREATE INDEX audit_result_at ON audit (result, at);
    DROP TRIGGER audit_result_only;
    -- Rows are evidence. Who, where, what and when never change. Two writes are allowed:
    -- an allowed attempt's result, once (count and last_at untouched); and a fold: a refused
    -- row that is still the newest of its person, address, action and result, less than
    -- ten minutes old, counts more attempts and moves last_at forward, nothing else.
    CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
    WHEN NEW.id IS NOT OLD.id OR NEW.at IS NOT OLD.at OR NEW.username IS NOT OLD.username
      OR NEW.role IS NOT OLD.role OR NEW.ip IS NOT OLD.ip OR NEW.action IS NOT OLD.action
      OR NEW.call_id IS NOT OLD.call_id OR NEW.agent_ext IS NOT OLD.agent_ext
      OR NEW.target_ext IS NOT OLD.target_ext OR NEW.phone IS NOT OLD.phone
      OR NEW.allowed IS NOT OLD.allowed
      OR NOT (
        (OLD.result IS NULL AND NEW.count IS OLD.count AND NEW.last_at IS OLD.last_at)
        OR (OLD.allowed = 0 AND OLD.result IS NOT NULL
            AND NEW.result IS OLD.result AND NEW.error IS OLD.error
            AND NEW.count > OLD.count
            AND NEW.last_at >= COALESCE(OLD.last_at, OLD.at)
            AND NEW.last_at < OLD.at + 600000
            AND NOT EXISTS (
              SELECT 1 FROM audit AS later
              WHERE later.username = OLD.username AND later.ip = OLD.ip
                AND later.action = OLD.action AND later.result = OLD.result
                AND later.id > OLD.id AND later.role = OLD.role AND later.allowed = 0))
      )
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
    """,
    """
    -- Every row belongs to one tenant; a tenant's supervisors read only its rows.
    ALTER TABLE audit ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
    CREATE INDEX audit_tenant_at ON audit (tenant, at);
    DROP INDEX audit_fold;
    CREATE INDEX audit_fold ON audit (tenant, username, ip, action, result, id);
    DROP TRIGGER audit_append_only;
    CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
    WHEN NEW.id IS NOT OLD.id OR NEW.at IS NOT OLD.at OR NEW.username IS NOT OLD.username
      OR NEW.role IS NOT OLD.role OR NEW.ip IS NOT OLD.ip OR NEW.action IS NOT OLD.action
      OR NEW.call_id IS NOT OLD.call_id OR NEW.agent_ext IS NOT OLD.agent_ext
      OR NEW.target_ext IS NOT OLD.target_ext OR NEW.phone IS NOT OLD.phone
      OR NEW.allowed IS NOT OLD.allowed OR NEW.tenant IS NOT OLD.tenant
      OR NOT (
        (OLD.result IS NULL AND NEW.count IS OLD.count AND NEW.last_at IS OLD.last_at)
        OR (OLD.allowed = 0 AND OLD.result IS NOT NULL
            AND NEW.result IS OLD.result AND NEW.error IS OLD.error
            AND NEW.count > OLD.count
            AND NEW.last_at >= COALESCE(OLD.last_at, OLD.at)
            AND NEW.last_at < OLD.at + 600000
            AND NOT EXISTS (
              SELECT 1 FROM audit AS later
              WHERE later.tenant = OLD.tenant AND later.username = OLD.username AND later.ip = OLD.ip
                AND later.action = OLD.action AND later.result = OLD.result
                AND later.id > OLD.id AND later.role = OLD.role AND later.allowed = 0))
      )
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
                    error: str | None = None, tenant: str = "default") -> int:
        """Write the row of one attempt and return its id.

        An allowed attempt is written with no result, before the PBX is asked;
        a refused one is written whole (allowed=False, result=its error code), or
        folded into the open row of the same refusals (see the module's doc).
        """
        now = int(self._clock() * 1000)
        row = (now, username, role, ip, action, call_id, agent_ext,
               target_ext, phone, int(allowed), result, error, tenant, now)
        if not allowed:
            if result is None:
                raise ValueError("a refused attempt is written with its result")
            return await self._run(self._refuse, row)
        return await self._run(self._insert, row)

    async def finish(self, row_id: int, result: str, error: str | None = None) -> None:
        """Record the outcome of an allowed attempt: "ok" or the PBX's error code."""
        await self._run(self._update, row_id, result, error)

    async def query(self, *, date: str | None = None, username: str | None = None,
                    result: str | None = None, limit: int = 200, tenant: str = "default") -> list[dict[str, Any]]:
        """Rows newest first, ValueError on a filter it cannot read.

        `date` is YYYY-MM-DD, a local day (a fold is on every day its range touches);
        `username` is who; `result` is "ok", "refused" (stopped before the PBX),
        "failed" (the PBX said no), "pending" (not answered yet) or one error code.
        """
        where: list[str] = ["tenant = ?"]
        params: list[Any] = [tenant]
        if date:
            start, end = self._day_bounds(date)
            where.append("at < ? AND COALESCE(last_at, at) >= ?")
            params += [end, start]
        if username:
            where.append("username = ?")
            params.append(username)
        if result:
            where.append(_result_filter(result, params))
        columns = [*COLUMNS, "count", "COALESCE(last_at, at)"]
        sql = f"SELECT {', '.join(columns)} FROM audit WHERE " + " AND ".join(where)
        sql += " ORDER BY at DESC, id DESC LIMIT ?"
        params.append(max(1, min(limit, 10_000)))
        return await self._run(self._select, sql, tuple(params))

    def _day_bounds(self, day: str) -> tuple[int, int]:
        try:
            parsed = datetime.strptime(day, "%Y-%m-%d").date()
            start = datetime.combine(parsed, clock_time(), self.tz)
            end = datetime.combine(parsed + timedelta(days=1), clock_time(), self.tz)
            return int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        except (OverflowError, OSError):  # the last day there is, or a clock out of range
            raise ValueError(f"no day {day!r} in the audit log's calendar") from None

    # -- on the database thread ---------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise AuditError("the audit log is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open_db(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _private(self.path)
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
        if self.path != ":memory:":
            for suffix in ("-wal", "-shm"):  # SQLite gives them the database's mode; older ones
                if Path(self.path + suffix).exists():
                    _private(self.path + suffix)
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
            f"INSERT INTO audit ({', '.join((*COLUMNS[1:], 'last_at'))}) "
            f"VALUES ({', '.join('?' * len(row))})",
            row,
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def _refuse(self, row: tuple[Any, ...]) -> int:
        """Fold a refused attempt into the open row of its kind, else write a new row."""
        now, username, role, ip, action, *_, result, _error, tenant, _ = row
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")  # another process's fold must not slip in between
        try:
            open_fold = db.execute(
                "SELECT id, at, COALESCE(last_at, at) FROM audit WHERE tenant = ? AND username = ? AND ip = ?"
                " AND action = ? AND result = ? AND role = ? AND allowed = 0"
                " ORDER BY id DESC LIMIT 1",
                (tenant, username, ip, action, result, role),
            ).fetchone()
            if open_fold is not None and open_fold[2] <= now < open_fold[1] + FOLD_WINDOW_MS:
                db.execute("UPDATE audit SET count = count + 1, last_at = ? WHERE id = ?",
                           (now, open_fold[0]))
                row_id = int(open_fold[0])
            else:
                row_id = self._insert(row)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return row_id

    def _update(self, row_id: int, result: str, error: str | None) -> None:
        self._conn().execute(
            "UPDATE audit SET result = ?, error = ? WHERE id = ? AND result IS NULL",
            (result, error, row_id),
        )

    def _select(self, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
        rows = self._conn().execute(sql, params).fetchall()
        out = [dict(zip((*COLUMNS, *FOLD_COLUMNS), row, strict=True)) for row in rows]
        for row in out:
            row["allowed"] = bool(row["allowed"])
        return out


def _result_filter(result: str, params: list[Any]) -> str:
    """The WHERE clause of ?result=, its parameter appended to `params`."""
    word = result.strip()
    if word == "ok":
        params.append("ok")
        return "result = ?"
    if word == "refused":
        return "allowed = 0"
    if word == "failed":
        return "allowed = 1 AND result IS NOT NULL AND result <> 'ok'"
    if word == "pending":
        return "allowed = 1 AND result IS NULL"
    if not RESULT_CODE.match(word):
        raise ValueError(f"result must be one of {sorted(RESULT_WORDS)} or an error code")
    params.append(word)
    return "result = ?"


def _private(path: str) -> None:
    """Create the file readable and writable by its owner only, or make it so."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    if os.stat(path).st_mode & 0o077:
        os.chmod(path, 0o600)


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

