"""Kiosk tokens made on the board, against real SQLite and real PostgreSQL (the same test
bodies), and an SQLite file of before the storage layer."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.services import PostgresServer, postgres_server
from wallboard.kiosk_tokens import SQLITE_MOVED, SQLITE_VERSION, KioskTokenError, KioskTokens, digest
from wallboard.settings import defaults
from wallboard.storage import Database, database_url


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = database_url(defaults().with_values(storage={"path": str(tmp_path / "wallboard.db")}))
    else:
        server: PostgresServer = request.getfixturevalue("pg")
        server.psql("DROP TABLE IF EXISTS kiosk_tokens; DROP TABLE IF EXISTS storage_migrations")
        url = database_url(defaults().with_values(storage={"database_url": server.url}))
    database = Database(url)
    yield database
    await database.close()


async def test_a_token_is_stored_hashed_checked_from_memory_and_survives_a_restart(db: Database) -> None:
    store = KioskTokens(db, clock=lambda: 1_000.0)
    await store.open()
    tv = store.tenant("default")
    token, row = await tv.create("TV tầng 3", "supervisor@sim")
    assert len(token) >= 40 and row["name"] == "TV tầng 3" and row["created_by"] == "supervisor@sim"
    assert tv.check(token) == row["id"]
    assert tv.check(token + "x") is None and tv.check("") is None
    assert store.tenant("t2").check(token) is None  # another tenant's board does not know it
    await store.close()
    async with db.connect() as conn:
        stored = (await conn.execute(text("SELECT token_sha256 FROM kiosk_tokens"))).scalars().all()
    assert stored == [digest(token)]

    again = KioskTokens(db)
    await again.open()
    assert again.tenant("default").check(token) == row["id"]
    await again.close()


async def test_revoked_is_refused_at_once_and_listed_as_revoked(db: Database) -> None:
    store = KioskTokens(db)
    await store.open()
    tv = store.tenant("default")
    keep, _ = await tv.create("kept", "a")
    gone, row = await tv.create("gone", "a")
    assert await tv.revoke(row["id"], "b")
    assert tv.check(gone) is None and tv.check(keep) is not None
    assert not await tv.revoke(row["id"], "b")  # once
    assert not await store.tenant("other").revoke(1, "b")  # not another tenant's
    rows = {r["name"]: r for r in await tv.rows()}
    assert rows["gone"]["revoked_by"] == "b" and rows["kept"]["revoked_at"] is None
    await store.close()
    again = KioskTokens(db)
    await again.open()
    assert again.tenant("default").check(gone) is None
    await again.close()


async def test_a_token_made_or_revoked_on_one_node_is_known_on_another_after_a_refresh(db: Database) -> None:
    a, b = KioskTokens(db), KioskTokens(db)
    await a.open()
    await b.open()
    token, row = await a.tenant("acme").create("TV", "boss")
    assert b.tenant("acme").check(token) is None
    await b.refresh()
    assert b.tenant("acme").check(token) == row["id"]
    assert await a.tenant("acme").revoke(row["id"], "boss")
    await b.refresh()
    assert b.tenant("acme").check(token) is None
    await a.close()
    await b.close()


async def test_last_seen_is_listed_at_once_and_written_at_most_once_a_minute(db: Database) -> None:
    now = [1_000.0]
    store = KioskTokens(db, clock=lambda: now[0])
    await store.open()
    tv = store.tenant("default")
    token, _ = await tv.create("TV", "a")
    tv.seen(token, "10.0.0.7")
    now[0] += 5
    tv.seen(token, "10.0.0.8")
    listed = (await tv.rows())[0]
    assert (listed["last_seen_at"], listed["last_seen_ip"]) == (1_005_000, "10.0.0.8")
    await store.close()
    async with db.connect() as conn:
        written = (await conn.execute(text("SELECT last_seen_at, last_seen_ip FROM kiosk_tokens"))).one()
    assert tuple(written) == (1_000_000, "10.0.0.7")


def legacy_file(path: Path, version: int) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE kiosk_tokens_version (version INTEGER NOT NULL)")
    db.execute("INSERT INTO kiosk_tokens_version VALUES (?)", (version,))
    return db


async def test_a_file_of_before_the_storage_layer_keeps_its_tokens(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    db = legacy_file(path, SQLITE_VERSION)
    db.execute("""CREATE TABLE kiosk_tokens (
      id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, name TEXT NOT NULL, token_sha256 TEXT NOT NULL UNIQUE,
      created_at INTEGER NOT NULL, created_by TEXT NOT NULL, last_seen_at INTEGER, last_seen_ip TEXT,
      revoked_at INTEGER, revoked_by TEXT)""")
    db.execute("CREATE INDEX kiosk_tokens_tenant ON kiosk_tokens (tenant, id)")
    db.execute("INSERT INTO kiosk_tokens (tenant, name, token_sha256, created_at, created_by)"
               " VALUES ('default', 'old TV', ?, 1, 'a')", (digest("old-token"),))
    db.close()
    store = KioskTokens(path)
    await store.open()
    try:
        assert store.tenant("default").check("old-token") == 1
        _, row = await store.tenant("default").create("new TV", "a")
        assert row["id"] == 2
    finally:
        await store.close()
    assert sqlite3.connect(path).execute("SELECT version FROM kiosk_tokens_version").fetchall() == [(SQLITE_MOVED,)]


async def test_a_newer_table_is_refused_in_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    legacy_file(path, SQLITE_MOVED + 1).close()
    store = KioskTokens(path)
    try:
        with pytest.raises(KioskTokenError, match="upgrade the wallboard"):
            await store.open()
    finally:
        await store.close()
