"""The audit log: one row per supervisor action attempt, allowed or refused, in the
storage database (wallboard/storage: SQLite at storage.path, or the PostgreSQL of
storage.database_url that every node of a cluster shares, so an action on any node is
audited once, in one place).

A row is written before the PBX is called and completed once it answers; the
database refuses any other change to a row (SQLite: triggers; PostgreSQL: a trigger
function with the same rule), so the log can be trusted after the fact. Repeated
refusals fold: a refused attempt of the same person (username and role), from the same
address, for the same action and with the same result as the newest such row, less
than `FOLD_WINDOW_MS` after that row began, adds one to its `count` and moves its
`last_at` instead of writing a row (the row keeps its first attempt's call, extensions
and number). So a kiosk or a viewer pressing a button in a loop costs a row per ten
minutes, not a row per request, and nothing is hidden: the row says how many and when
from and to, and any other row in between still stands on its own. The trigger lets
only such a fold touch a finished row.

When the database cannot be reached, `begin` raises `StorageUnavailable`: the caller
refuses the action (nothing is done without its row) and the board keeps running; the
next attempt tries again, with no restart. A result that cannot be written is kept and
written with the next row that can be.

SQLite files are readable by their owner only (the storage layer makes them so). An
SQLite file of the audit log's own schema (versions 1 to 3 in its `schema_version`
table) is brought into the storage layer's migrations as it stands, rows kept.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
import zlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo
from datetime import time as clock_time
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    select,
    text,
    update,
)

from wallboard.storage import Database, Migration, Schema, StorageUnavailable

log = logging.getLogger("wallboard.audit")

COLUMNS = (
    "id", "at", "username", "role", "ip", "action", "call_id", "agent_ext", "target_ext",
    "phone", "allowed", "result", "error", "tenant",
)
# Read back with every row: how many attempts it stands for, and when the last one was.
FOLD_COLUMNS = ("count", "last_at")
# A fold stays open this long after its first attempt; the triggers hold the same number.
FOLD_WINDOW_MS = 600_000
# ?result= takes one of these words, or an error code as the log writes it.
RESULT_WORDS = frozenset({"ok", "refused", "failed", "pending"})
RESULT_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

METADATA = MetaData()
# How queries see the table (its DDL is the migrations' own, frozen, per engine).
audit = Table(
    "audit", METADATA,
    Column("id", Integer, primary_key=True),
    Column("tenant", String(32), nullable=False),
    Column("at", BigInteger, nullable=False),  # epoch ms, UTC
    Column("username", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("ip", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("call_id", Text),
    Column("agent_ext", Text),
    Column("target_ext", Text),
    Column("phone", Text),
    Column("allowed", Integer, nullable=False),
    Column("result", Text),
    Column("error", Text),
    Column("count", Integer, nullable=False),
    Column("last_at", BigInteger),
)

# The audit log's SQLite schema before the storage layer: migration N took a file from
# version N to N+1 (its `schema_version` table). Released: never edited.
SQLITE_MIGRATIONS: tuple[str, ...] = (
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
# What the old `schema_version` table says once the storage layer's migrations own the
# table: an older wallboard opening the file stops with "newer than this program knows".
SQLITE_MOVED = len(SQLITE_MIGRATIONS) + 1

# The same table in PostgreSQL, at the shape of SQLite's version 3, and the same rule in a
# trigger function (NULL comparisons count as a change, TRUNCATE is refused too).
POSTGRES_FIRST: tuple[str, ...] = (
    """
    CREATE TABLE audit (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        tenant TEXT NOT NULL DEFAULT 'default',
        at BIGINT NOT NULL,
        username TEXT NOT NULL,
        role TEXT NOT NULL,
        ip TEXT NOT NULL,
        action TEXT NOT NULL,
        call_id TEXT,
        agent_ext TEXT,
        target_ext TEXT,
        phone TEXT,
        allowed INTEGER NOT NULL,
        result TEXT,
        error TEXT,
        count INTEGER NOT NULL DEFAULT 1,
        last_at BIGINT
    )
    """,
    "CREATE INDEX audit_at ON audit (at)",
    "CREATE INDEX audit_username_at ON audit (username, at)",
    "CREATE INDEX audit_result_at ON audit (result, at)",
    "CREATE INDEX audit_tenant_at ON audit (tenant, at)",
    "CREATE INDEX audit_fold ON audit (tenant, username, ip, action, result, id)",
    """
    CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $body$
    BEGIN
      IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'audit rows are append-only' USING ERRCODE = 'restrict_violation';
      END IF;
      IF (NEW.id, NEW.tenant, NEW.at, NEW.username, NEW.role, NEW.ip, NEW.action, NEW.call_id,
          NEW.agent_ext, NEW.target_ext, NEW.phone, NEW.allowed)
         IS DISTINCT FROM (OLD.id, OLD.tenant, OLD.at, OLD.username, OLD.role, OLD.ip, OLD.action,
          OLD.call_id, OLD.agent_ext, OLD.target_ext, OLD.phone, OLD.allowed)
         OR NOT COALESCE(
           (OLD.result IS NULL AND NEW.count = OLD.count AND NEW.last_at IS NOT DISTINCT FROM OLD.last_at)
           OR (OLD.allowed = 0 AND OLD.result IS NOT NULL
               AND NEW.result IS NOT DISTINCT FROM OLD.result AND NEW.error IS NOT DISTINCT FROM OLD.error
               AND NEW.count > OLD.count
               AND NEW.last_at >= COALESCE(OLD.last_at, OLD.at)
               AND NEW.last_at < OLD.at + 600000
               AND NOT EXISTS (
                 SELECT 1 FROM audit AS later
                 WHERE later.tenant = OLD.tenant AND later.username = OLD.username AND later.ip = OLD.ip
                   AND later.action = OLD.action AND later.result = OLD.result
                   AND later.id > OLD.id AND later.role = OLD.role AND later.allowed = 0)),
           false)
      THEN
        RAISE EXCEPTION 'audit rows are append-only' USING ERRCODE = 'restrict_violation';
      END IF;
      RETURN NEW;
    END
    $body$
    """,
    "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit"
    " FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
    "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit"
    " FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
)


def _first(conn: Connection) -> None:
    """The table as the audit log left it: PostgreSQL's made new; an SQLite file's own
    migrations run from wherever it stood (0: a new file), its rows kept."""
    if conn.dialect.name != "sqlite":
        for statement in POSTGRES_FIRST:
            conn.exec_driver_sql(statement)
        return
    conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    found = conn.exec_driver_sql("SELECT version FROM schema_version").scalar()
    version = int(found or 0)
    if version > len(SQLITE_MIGRATIONS):
        raise AuditError(f"the audit table has schema version {version}, newer than this program knows "
                         f"({len(SQLITE_MIGRATIONS)}); use a newer wallboard or another storage.path")
    for step in SQLITE_MIGRATIONS[version:]:
        for statement in _statements(step):
            conn.exec_driver_sql(statement)
    conn.exec_driver_sql("DELETE FROM schema_version")
    conn.exec_driver_sql(f"INSERT INTO schema_version (version) VALUES ({SQLITE_MOVED})")


# SQLite's trigger let a fold's last_at be set to NULL (a NULL comparison is not a "no"):
# the same rule, with an unknown answer counted as a change, as PostgreSQL's function has it.
SQLITE_NULL_SAFE = """
    CREATE TRIGGER audit_append_only BEFORE UPDATE ON audit
    WHEN NEW.id IS NOT OLD.id OR NEW.at IS NOT OLD.at OR NEW.username IS NOT OLD.username
      OR NEW.role IS NOT OLD.role OR NEW.ip IS NOT OLD.ip OR NEW.action IS NOT OLD.action
      OR NEW.call_id IS NOT OLD.call_id OR NEW.agent_ext IS NOT OLD.agent_ext
      OR NEW.target_ext IS NOT OLD.target_ext OR NEW.phone IS NOT OLD.phone
      OR NEW.allowed IS NOT OLD.allowed OR NEW.tenant IS NOT OLD.tenant
      OR NOT COALESCE(
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
                AND later.id > OLD.id AND later.role = OLD.role AND later.allowed = 0)),
        0)
    BEGIN SELECT RAISE(ABORT, 'audit rows are append-only'); END;
"""


def _null_safe(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DROP TRIGGER audit_append_only")
        conn.exec_driver_sql(SQLITE_NULL_SAFE.strip())


SCHEMA = Schema("audit", (Migration(1, _first), Migration(2, _null_safe)))
SCHEMA_VERSION = len(SCHEMA.migrations)


class AuditError(Exception):
    """The audit table cannot be used as it is (e.g. made by a newer wallboard)."""


class AuditLog:
    """`AuditLog(db)` on the deployment's storage database, or `AuditLog(path)`: an SQLite
    file of its own (tests, tools), closed with the log."""

    def __init__(self, where: Database | str | Path, *, tz: tzinfo = UTC,
                 clock: Callable[[], float] = time.time) -> None:
        self._own = not isinstance(where, Database)
        self.db = where if isinstance(where, Database) else Database.sqlite(where)
        self.tz = tz  # days in ?date= filters are local days in this zone
        self._clock = clock
        self._ready = False
        self._said: str | None = None
        self._unfinished: dict[int, tuple[str, str | None]] = {}  # results not written yet

    async def open(self) -> None:
        """Migrate the table. A database that cannot be reached now is said once in the log
        and tried again by the next attempt; a table it cannot use raises AuditError."""
        try:
            await self._ensure()
        except StorageUnavailable:
            pass

    async def close(self) -> None:
        if self._unfinished:
            log.warning("audit: %d results not written (the database cannot be reached): rows %s stay pending",
                        len(self._unfinished), sorted(self._unfinished))
        if self._own:
            await self.db.close()

    async def _ensure(self) -> None:
        if self._ready:
            return
        try:
            version = await self.db.version(SCHEMA.group)
            if version > SCHEMA_VERSION:
                raise AuditError(f"the audit table has schema version {version}, newer than this program "
                                 f"knows ({SCHEMA_VERSION}); use a newer wallboard or another storage.path")
            await self.db.migrate(SCHEMA)
        except StorageUnavailable as e:
            self._unavailable(e)
            raise
        self._ready = True

    def _unavailable(self, error: StorageUnavailable) -> None:
        if self._said != str(error):
            log.warning("audit log unavailable, supervisor actions are refused: %s", error)
            self._said = str(error)

    def _recovered(self) -> None:
        if self._said is not None:
            log.info("audit log: the storage database answers again")
            self._said = None

    async def begin(self, *, username: str, role: str, ip: str, action: str,
                    call_id: str | None = None, agent_ext: str | None = None,
                    target_ext: str | None = None, phone: str | None = None,
                    allowed: bool = True, result: str | None = None,
                    error: str | None = None, tenant: str = "default") -> int:
        """Write the row of one attempt and return its id; StorageUnavailable when it cannot
        be written (then nothing may be done).

        An allowed attempt is written with no result, before the PBX is asked;
        a refused one is written whole (allowed=False, result=its error code), or
        folded into the open row of the same refusals (see the module's doc).
        """
        if not allowed and result is None:
            raise ValueError("a refused attempt is written with its result")
        now = int(self._clock() * 1000)
        row = {"tenant": tenant, "at": now, "username": username, "role": role, "ip": ip, "action": action,
               "call_id": call_id, "agent_ext": agent_ext, "target_ext": target_ext, "phone": phone,
               "allowed": int(allowed), "result": result, "error": error, "count": 1, "last_at": now}
        await self._ensure()
        try:
            async with self.db.begin() as conn:
                row_id = await (self._insert(conn, row) if allowed else self._refuse(conn, row))
        except StorageUnavailable as e:
            self._unavailable(e)
            raise
        self._recovered()
        if self._unfinished:
            await self._write_unfinished()
        return row_id

    async def finish(self, row_id: int, result: str, error: str | None = None) -> None:
        """Record the outcome of an allowed attempt: "ok" or the PBX's error code. When the
        database cannot be reached now, it is written with the next row that can be."""
        try:
            async with self.db.begin() as conn:
                await self._update(conn, row_id, result, error)
        except StorageUnavailable as e:
            self._unavailable(e)
            log.warning("audit: the result %s of row %d is written once the database answers", result, row_id)
            self._unfinished[row_id] = (result, error)

    async def _write_unfinished(self) -> None:
        try:
            async with self.db.begin() as conn:
                for row_id, (result, error) in self._unfinished.items():
                    await self._update(conn, row_id, result, error)
        except StorageUnavailable:
            return
        self._unfinished.clear()

    async def query(self, *, date: str | None = None, username: str | None = None,
                    result: str | None = None, limit: int = 200, tenant: str = "default") -> list[dict[str, Any]]:
        """Rows newest first, ValueError on a filter it cannot read.

        `date` is YYYY-MM-DD, a local day (a fold is on every day its range touches);
        `username` is who; `result` is "ok", "refused" (stopped before the PBX),
        "failed" (the PBX said no), "pending" (not answered yet) or one error code.
        """
        t = audit.c
        where: list[ColumnElement[bool]] = [t.tenant == tenant]
        if date:
            start, end = self._day_bounds(date)
            where += [t.at < end, func.coalesce(t.last_at, t.at) >= start]
        if username:
            where.append(t.username == username)
        if result:
            where.append(_result_filter(result))
        columns = [t[name] for name in COLUMNS]
        query = (select(*columns, t["count"], func.coalesce(t.last_at, t.at))
                 .where(and_(*where)).order_by(t.at.desc(), t.id.desc()).limit(max(1, min(limit, 10_000))))
        await self._ensure()
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        out = [dict(zip((*COLUMNS, *FOLD_COLUMNS), row, strict=True)) for row in rows]
        for found in out:
            found["allowed"] = bool(found["allowed"])
        return out

    def _day_bounds(self, day: str) -> tuple[int, int]:
        try:
            parsed = datetime.strptime(day, "%Y-%m-%d").date()
            start = datetime.combine(parsed, clock_time(), self.tz)
            end = datetime.combine(parsed + timedelta(days=1), clock_time(), self.tz)
            return int(start.timestamp() * 1000), int(end.timestamp() * 1000)
        except (OverflowError, OSError):  # the last day there is, or a clock out of range
            raise ValueError(f"no day {day!r} in the audit log's calendar") from None

    # -- in a transaction ------------------------------------------------------------

    async def _insert(self, conn: Any, row: dict[str, Any]) -> int:
        done = await conn.execute(audit.insert().values(**row))
        return int(done.inserted_primary_key[0])

    async def _refuse(self, conn: Any, row: dict[str, Any]) -> int:
        """Fold a refused attempt into the open row of its kind, else write a new row.
        SQLite's write transaction is exclusive already; PostgreSQL takes a lock per kind,
        so two nodes folding the same refusals queue instead of both writing a row."""
        t = audit.c
        kind = (row["tenant"], row["username"], row["ip"], row["action"], row["result"], row["role"])
        if self.db.dialect == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                               {"key": zlib.crc32("\x1f".join(kind).encode())})
        open_fold = (await conn.execute(
            select(t.id, t.at, func.coalesce(t.last_at, t.at))
            .where(t.tenant == row["tenant"], t.username == row["username"], t.ip == row["ip"],
                   t.action == row["action"], t.result == row["result"], t.role == row["role"], t.allowed == 0)
            .order_by(t.id.desc()).limit(1))).first()
        now = row["at"]
        if open_fold is not None and open_fold[2] <= now < open_fold[1] + FOLD_WINDOW_MS:
            await conn.execute(update(audit).where(t.id == open_fold[0])
                               .values({t["count"]: t["count"] + 1, t.last_at: now}))
            return int(open_fold[0])
        return await self._insert(conn, row)

    async def _update(self, conn: Any, row_id: int, result: str, error: str | None) -> None:
        t = audit.c
        await conn.execute(update(audit).where(t.id == row_id, t.result.is_(None))
                           .values(result=result, error=error))


def _result_filter(result: str) -> ColumnElement[bool]:
    """The condition of ?result=."""
    t = audit.c
    word = result.strip()
    if word == "ok":
        return t.result == "ok"
    if word == "refused":
        return t.allowed == 0
    if word == "failed":
        return and_(t.allowed == 1, t.result.is_not(None), t.result != "ok")
    if word == "pending":
        return and_(t.allowed == 1, t.result.is_(None))
    if not RESULT_CODE.match(word):
        raise ValueError(f"result must be one of {sorted(RESULT_WORDS)} or an error code")
    return t.result == word


def _statements(script: str) -> list[str]:
    # A trigger's body holds semicolons: keep reading until SQLite says a statement is complete.
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return [s for s in statements if s]
