from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from wallboard.audit import SCHEMA_VERSION, AuditError, AuditLog

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


@pytest.fixture
async def log(tmp_path: Path) -> AsyncIterator[AuditLog]:
    audit = AuditLog(tmp_path / "var" / "deep" / "wallboard.db", tz=HCM)
    await audit.open()
    yield audit
    await audit.close()


async def test_creates_the_file_and_its_parents(tmp_path: Path, log: AuditLog) -> None:
    assert (tmp_path / "var" / "deep" / "wallboard.db").is_file()


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


async def test_database_refuses_edits_and_deletes(tmp_path: Path, log: AuditLog) -> None:
    row_id = await log.begin(**attempt())
    db = sqlite3.connect(tmp_path / "var" / "deep" / "wallboard.db")
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE audit SET username = 'someone' WHERE id = ?", (row_id,))
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("DELETE FROM audit")
        db.execute("UPDATE audit SET result = 'ok' WHERE id = ?", (row_id,))
        db.commit()
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute("UPDATE audit SET result = 'FAKED' WHERE id = ?", (row_id,))
    finally:
        db.close()


async def test_newest_first_with_filters(tmp_path: Path) -> None:
    clock = Clock(datetime(2025, 3, 1, 23, 30, tzinfo=HCM))
    log = AuditLog(tmp_path / "a.db", tz=HCM, clock=clock)
    await log.open()
    try:
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
    finally:
        await log.close()


async def test_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "wallboard.db"
    first = AuditLog(path)
    await first.open()
    row_id = await first.begin(**attempt())
    await first.finish(row_id, "ok")
    await first.close()
    second = AuditLog(path)
    await second.open()
    try:
        rows = await second.query()
        assert [(r["id"], r["result"]) for r in rows] == [(row_id, "ok")]
        assert await second.begin(**attempt()) == row_id + 1
    finally:
        await second.close()


async def test_wal_mode_and_schema_version(tmp_path: Path, log: AuditLog) -> None:
    db = sqlite3.connect(tmp_path / "var" / "deep" / "wallboard.db")
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
    finally:
        db.close()


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
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        assert db.execute("SELECT x FROM something_else").fetchall() == [(7,)]
    finally:
        db.close()


async def test_newer_schema_is_refused_in_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO schema_version VALUES (?)", (SCHEMA_VERSION + 1,))
    db.commit()
    db.close()
    log = AuditLog(path)
    with pytest.raises(AuditError, match="newer than this program knows"):
        await log.open()
    with pytest.raises(AuditError, match="not open"):
        await log.begin(**attempt())


async def test_database_work_runs_off_the_event_loop_thread(log: AuditLog,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[int] = []
    real = log._insert

    def spy(row: tuple[Any, ...]) -> int:
        threads.append(threading.get_ident())
        return real(row)

    monkeypatch.setattr(log, "_insert", spy)
    await asyncio.gather(*(log.begin(**attempt(call_id=str(i))) for i in range(20)))
    assert len(threads) == 20
    assert set(threads) != {threading.get_ident()}
    assert len(set(threads)) == 1  # one thread owns the connection
    assert len(await log.query()) == 20


async def test_in_memory_database_for_tests_elsewhere() -> None:
    log = AuditLog(":memory:")
    await log.open()
    try:
        await log.begin(**attempt())
        assert len(await log.query()) == 1
    finally:
        await log.close()
