"""The audit log against real SQLite and real PostgreSQL: the same test bodies for both,
and SQLite's own files (modes, the audit log's schema before the storage layer) apart."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from tests.services import PostgresServer, postgres_server
from wallboard.audit import SCHEMA, SCHEMA_VERSION, SQLITE_MIGRATIONS, SQLITE_MOVED, AuditError, AuditLog, _statements
from wallboard.settings import defaults
from wallboard.storage import Database, database_url

HCM = ZoneInfo("Asia/Ho_Chi_Minh")


class Clock:
    def __init__(self, when: datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now


def attempt(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"username": "boss", "role": "supervisor", "ip": "10.0.0.9",
                           "action": "listen", "call_id": "call-1", "agent_ext": "1001",
                           "target_ext": "999"}
    row.update(overrides)
    return row


def refused(**overrides: Any) -> dict[str, Any]:
    return {**attempt(username="kiosk", role="kiosk", **overrides), "allowed": False,
            "result": "FORBIDDEN"}


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def fresh_postgres(server: PostgresServer) -> None:
    server.psql("DROP TABLE IF EXISTS audit; DROP FUNCTION IF EXISTS audit_append_only();"
                " DROP TABLE IF EXISTS storage_migrations")


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = database_url(defaults().with_values(storage={"path": str(tmp_path / "var" / "deep" / "wallboard.db")}))
    else:
        server: PostgresServer = request.getfixturevalue("pg")
        fresh_postgres(server)
        url = database_url(defaults().with_values(storage={"database_url": server.url}))
    database = Database(url)
    yield database
    await database.close()


@pytest.fixture
async def make(db: Database) -> AsyncIterator[Callable[..., Any]]:
    logs: list[AuditLog] = []

    async def opened(clock: Callable[[], float] | None = None) -> AuditLog:
        log = AuditLog(db, tz=HCM, **({"clock": clock} if clock else {}))
        await log.open()
        logs.append(log)
        return log

    yield opened
    for log in logs:
        await log.close()


@pytest.fixture
async def log(make: Callable[..., Any]) -> AuditLog:
    opened: AuditLog = await make()
    return opened


async def sql(db: Database, statement: str, **params: Any) -> None:
    """A write of someone's own, outside the audit log (what the database must refuse)."""
    async with db.begin() as conn:
        await conn.execute(text(statement), params)


async def test_allowed_attempt_is_written_before_and_completed_after(log: AuditLog) -> None:
    row_id = await log.begin(**attempt())
    [pending] = await log.query()
    assert pending["id"] == row_id
    assert pending["allowed"] is True
    assert pending["result"] is None
    await log.finish(row_id, "USER_NOT_REGISTERED", "not registered")
    [done] = await log.query()
    assert {k: done[k] for k in ("username", "role", "ip", "action", "call_id", "agent_ext",
                                 "target_ext", "result", "error")} == {
        "username": "boss", "role": "supervisor", "ip": "10.0.0.9", "action": "listen",
        "call_id": "call-1", "agent_ext": "1001", "target_ext": "999",
        "result": "USER_NOT_REGISTERED", "error": "not registered"}
    assert done["at"] == pending["at"]  # finishing changes only the result


async def test_refused_attempt_is_one_whole_row(log: AuditLog) -> None:
    await log.begin(**attempt(username="eve", role="viewer"), allowed=False, result="FORBIDDEN")
    [row] = await log.query()
    assert row["allowed"] is False
    assert row["result"] == "FORBIDDEN"


async def test_a_result_is_written_once(log: AuditLog) -> None:
    row_id = await log.begin(**attempt())
    await log.finish(row_id, "ok")
    await log.finish(row_id, "USER_BUSY")
    [row] = await log.query()
    assert row["result"] == "ok"


async def test_database_refuses_edits_and_deletes(db: Database, log: AuditLog) -> None:
    row_id = await log.begin(**attempt())
    with pytest.raises(sa_exc.IntegrityError, match="append-only"):
        await sql(db, "UPDATE audit SET username = 'someone' WHERE id = :id", id=row_id)
    with pytest.raises(sa_exc.IntegrityError, match="append-only"):
        await sql(db, "DELETE FROM audit")
    with pytest.raises(sa_exc.IntegrityError, match="append-only"):
        await sql(db, "UPDATE audit SET tenant = 'other' WHERE id = :id", id=row_id)
    await sql(db, "UPDATE audit SET result = 'ok' WHERE id = :id", id=row_id)
    with pytest.raises(sa_exc.IntegrityError, match="append-only"):
        await sql(db, "UPDATE audit SET result = 'FAKED' WHERE id = :id", id=row_id)
    if db.dialect == "postgresql":
        with pytest.raises(sa_exc.IntegrityError, match="append-only"):
            await sql(db, "TRUNCATE audit")
    assert [r["result"] for r in await log.query()] == ["ok"]


async def test_newest_first_with_filters(make: Callable[..., Any]) -> None:
    clock = Clock(datetime(2025, 3, 1, 23, 30, tzinfo=HCM))
    log: AuditLog = await make(clock)
    await log.begin(**attempt(username="boss", call_id="a"))
    clock.now += 3600  # 00:30 on 2 March, local time; still 1 March in UTC
    await log.begin(**attempt(username="anna", call_id="b"))
    clock.now += 60
    await log.begin(**attempt(username="boss", call_id="c"))
    assert [r["call_id"] for r in await log.query()] == ["c", "b", "a"]
    assert [r["call_id"] for r in await log.query(username="boss")] == ["c", "a"]
    assert [r["call_id"] for r in await log.query(date="2025-03-02")] == ["c", "b"]
    assert [r["call_id"] for r in await log.query(date="2025-03-01")] == ["a"]
    assert [r["call_id"] for r in await log.query(date="2025-03-02", username="boss")] == ["c"]
    assert [r["call_id"] for r in await log.query(limit=1)] == ["c"]
    with pytest.raises(ValueError):
        await log.query(date="2025-3-2x")


async def test_tenants_read_only_their_rows(log: AuditLog) -> None:
    await log.begin(**attempt(call_id="a"), tenant="acme")
    await log.begin(**attempt(call_id="b"), tenant="other")
    await log.begin(**refused(call_id="c"), tenant="acme")
    await log.begin(**refused(call_id="d"), tenant="other")  # never folds into acme's
    assert [r["call_id"] for r in await log.query(tenant="acme")] == ["c", "a"]
    assert [(r["call_id"], r["count"]) for r in await log.query(tenant="other")] == [("d", 1), ("b", 1)]
    assert await log.query() == []


async def test_survives_reopening(db: Database, make: Callable[..., Any]) -> None:
    first: AuditLog = await make()
    row_id = await first.begin(**attempt())
    await first.finish(row_id, "ok")
    await first.close()
    await db.close()
    second: AuditLog = await make()
    rows = await second.query()
    assert [(r["id"], r["result"]) for r in rows] == [(row_id, "ok")]
    assert await second.begin(**attempt()) == row_id + 1
    assert await db.version(SCHEMA.group) == SCHEMA_VERSION


async def test_a_newer_table_is_refused_in_one_sentence(db: Database) -> None:
    await AuditLog(db).open()
    await sql(db, "UPDATE storage_migrations SET version = :v WHERE group_name = 'audit'", v=SCHEMA_VERSION + 1)
    with pytest.raises(AuditError, match="newer than this program knows"):
        await AuditLog(db).open()
    with pytest.raises(AuditError, match="newer than this program knows"):
        await AuditLog(db).begin(**attempt())


async def test_repeated_refusals_fold_into_one_row_with_count_and_range(make: Callable[..., Any]) -> None:
    clock = Clock(datetime(2025, 3, 1, 9, 0, tzinfo=HCM))
    first = int(clock.now * 1000)
    log: AuditLog = await make(clock)
    for n in range(500):
        clock.now = (first + 400 * n) / 1000
        await log.begin(**refused(call_id=f"call-{n}"))
    [row] = await log.query()
    assert row["count"] == 500 and row["allowed"] is False and row["result"] == "FORBIDDEN"
    assert (row["at"], row["last_at"]) == (first, first + 199_600)
    assert row["call_id"] == "call-0"  # the first attempt's details
    # Another address, action or result is another row; so is the same one
    # once the fold is ten minutes old.
    await log.begin(**refused(ip="10.0.0.10"))
    await log.begin(**refused(action="barge"))
    await log.begin(**{**refused(), "result": "CSRF"})
    clock.now = first / 1000 + 600
    await log.begin(**refused())
    rows = await log.query()
    assert [(r["ip"], r["action"], r["result"], r["count"]) for r in rows] == [
        ("10.0.0.9", "listen", "FORBIDDEN", 1), ("10.0.0.9", "listen", "CSRF", 1),
        ("10.0.0.9", "barge", "FORBIDDEN", 1), ("10.0.0.10", "listen", "FORBIDDEN", 1),
        ("10.0.0.9", "listen", "FORBIDDEN", 500)]


async def test_an_allowed_attempt_never_folds(log: AuditLog) -> None:
    for _ in range(3):
        await log.finish(await log.begin(**attempt()), "ok")
    assert [r["count"] for r in await log.query()] == [1, 1, 1]


async def test_the_database_lets_only_an_open_fold_grow(db: Database, make: Callable[..., Any]) -> None:
    clock = Clock(datetime(2025, 3, 1, 9, 0, tzinfo=HCM))
    log: AuditLog = await make(clock)
    old = await log.begin(**refused())
    clock.now += 700
    newer = await log.begin(**refused())
    allowed = await log.begin(**attempt())
    await log.finish(allowed, "ok")
    assert newer != old
    at = int(clock.now * 1000)
    for statement, args in [
        # a closed fold (a newer row of its kind exists) stays as it is
        ("UPDATE audit SET count = count + 1, last_at = at + 1 WHERE id = :id", {"id": old}),
        # the open one: never past ten minutes, never backwards, never fewer
        ("UPDATE audit SET count = count + 1, last_at = :at WHERE id = :id", {"at": at + 600_000, "id": newer}),
        ("UPDATE audit SET count = count + 1, last_at = :at WHERE id = :id", {"at": at - 1, "id": newer}),
        ("UPDATE audit SET count = 0, last_at = :at WHERE id = :id", {"at": at + 1, "id": newer}),
        ("UPDATE audit SET count = count + 1, last_at = NULL WHERE id = :id", {"id": newer}),
        ("UPDATE audit SET count = 5, last_at = :at, call_id = 'x' WHERE id = :id", {"at": at + 1, "id": newer}),
        ("UPDATE audit SET count = 5, last_at = :at, result = 'ok' WHERE id = :id", {"at": at + 1, "id": newer}),
        # an allowed row has no count to grow
        ("UPDATE audit SET count = 2 WHERE id = :id", {"id": allowed}),
    ]:
        with pytest.raises(sa_exc.IntegrityError, match="append-only"):
            await sql(db, statement, **args)
    await sql(db, "UPDATE audit SET count = 9, last_at = :at WHERE id = :id", at=at + 1, id=newer)
    assert [r["count"] for r in await log.query(result="refused")] == [9, 1]


async def test_filters_by_result_and_by_who(log: AuditLog) -> None:
    await log.finish(await log.begin(**attempt(call_id="a")), "ok")
    await log.finish(await log.begin(**attempt(call_id="b", username="anna")), "USER_BUSY")
    await log.begin(**attempt(call_id="c"))
    await log.begin(**refused(call_id="d"))
    await log.begin(**{**attempt(call_id="e", username="anna"), "allowed": False,
                       "result": "CSRF"})

    async def ids(**filters: str) -> list[str]:
        return sorted(r["call_id"] for r in await log.query(**filters))  # type: ignore[arg-type]

    assert await ids(result="ok") == ["a"]
    assert await ids(result="failed") == ["b"]
    assert await ids(result="pending") == ["c"]
    assert await ids(result="refused") == ["d", "e"]
    assert await ids(result="USER_BUSY") == ["b"]
    assert await ids(result="refused", username="anna") == ["e"]
    assert await ids(username="boss") == ["a", "c"]
    with pytest.raises(ValueError):
        await log.query(result="ok' OR 1=1 --")


@pytest.mark.parametrize("day", ["9999-12-31", "2025-02-30", "2025-3-2x", "-1"])
async def test_a_day_out_of_range_is_a_value_error(tmp_path: Path, day: str) -> None:
    log = AuditLog(tmp_path / "a.db", tz=HCM)
    await log.open()
    try:
        with pytest.raises(ValueError):
            await log.query(date=day)
    finally:
        await log.close()


async def test_a_fold_is_found_on_every_day_its_range_touches(make: Callable[..., Any]) -> None:
    clock = Clock(datetime(2025, 3, 1, 23, 55, tzinfo=HCM))
    log: AuditLog = await make(clock)
    await log.begin(**refused())
    clock.now += 420  # 00:02 on 2 March
    await log.begin(**refused())
    assert [r["count"] for r in await log.query(date="2025-03-01")] == [2]
    assert [r["count"] for r in await log.query(date="2025-03-02")] == [2]
    assert await log.query(date="2025-03-03") == []


# -- SQLite's files ------------------------------------------------------------------


async def test_creates_the_file_and_its_parents_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "var" / "deep" / "wallboard.db"
    log = AuditLog(path)
    await log.open()
    await log.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT version FROM storage_migrations WHERE group_name = 'audit'").fetchall() == [
            (SCHEMA_VERSION,)]
    finally:
        db.close()


async def test_files_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "var" / "wallboard.db"
    previous = os.umask(0)  # the loosest umask: the modes are our own, not luck
    try:
        log = AuditLog(path)
        await log.open()
        try:
            await log.begin(**attempt())
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {
                f.name: "0o600" for f in files}
            assert path.parent.stat().st_mode & 0o077 == 0
        finally:
            await log.close()
    finally:
        os.umask(previous)


async def test_an_existing_database_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()
    path.chmod(0o644)
    log = AuditLog(path)
    await log.open()
    await log.close()
    assert path.stat().st_mode & 0o777 == 0o600


def old_file(path: Path, version: int) -> sqlite3.Connection:
    """An SQLite file as the audit log left it at `version` of its own schema."""
    db = sqlite3.connect(path, isolation_level=None)
    for step in SQLITE_MIGRATIONS[:version]:
        for statement in _statements(step):
            db.execute(statement)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (?)", (version,))
    return db


@pytest.mark.parametrize("version_table", [False, True])
async def test_migrates_from_version_0(tmp_path: Path, version_table: bool) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE something_else (x INTEGER)")  # what else lives there stays
    db.execute("INSERT INTO something_else VALUES (7)")
    if version_table:
        db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        db.execute("INSERT INTO schema_version VALUES (0)")
    db.commit()
    db.close()
    log = AuditLog(path)
    await log.open()
    try:
        await log.begin(**attempt())
        assert len(await log.query()) == 1
    finally:
        await log.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SQLITE_MOVED,)]
        assert db.execute("SELECT x FROM something_else").fetchall() == [(7,)]
    finally:
        db.close()


async def test_migrates_version_1_rows_as_single_attempts(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    db = old_file(path, 1)
    db.execute("INSERT INTO audit (at, username, role, ip, action, allowed, result)"
               " VALUES (1000, 'eve', 'viewer', '10.0.0.1', 'barge', 0, 'FORBIDDEN')")
    db.close()
    log = AuditLog(path, clock=lambda: 1.5)
    await log.open()
    try:
        [row] = await log.query()
        assert (row["count"], row["at"], row["last_at"]) == (1, 1000, 1000)
        await log.begin(username="eve", role="viewer", ip="10.0.0.1", action="barge",
                        allowed=False, result="FORBIDDEN")
        [row] = await log.query()
        assert (row["count"], row["last_at"]) == (2, 1500)
    finally:
        await log.close()


async def test_a_version_3_file_keeps_its_rows_and_its_triggers(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    db = old_file(path, 3)
    db.execute("INSERT INTO audit (at, username, role, ip, action, allowed, result, tenant, last_at)"
               " VALUES (1000, 'boss', 'supervisor', '10.0.0.1', 'listen', 1, 'ok', 'acme', 1000)")
    db.execute("INSERT INTO audit (at, username, role, ip, action, allowed, tenant, last_at)"
               " VALUES (2000, 'boss', 'supervisor', '10.0.0.1', 'barge', 1, 'acme', 2000)")
    db.close()
    log = AuditLog(path, clock=lambda: 3.0)
    await log.open()
    try:
        assert [(r["id"], r["action"], r["result"]) for r in await log.query(tenant="acme")] == [
            (2, "barge", None), (1, "listen", "ok")]
        await log.finish(2, "USER_BUSY")
        assert await log.begin(**attempt(), tenant="acme") == 3
        with pytest.raises(sa_exc.IntegrityError, match="append-only"):
            await sql(log.db, "DELETE FROM audit WHERE id = 1")
    finally:
        await log.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SQLITE_MOVED,)]
        assert db.execute("SELECT id, result FROM audit ORDER BY id").fetchall() == [
            (1, "ok"), (2, "USER_BUSY"), (3, None)]
    finally:
        db.close()


async def test_a_newer_file_of_the_old_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (?)", (len(SQLITE_MIGRATIONS) + 1,))
    db.commit()
    db.close()
    log = AuditLog(path)
    try:
        with pytest.raises(AuditError, match="newer than this program knows"):
            await log.open()
    finally:
        await log.close()
