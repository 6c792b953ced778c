"""The storage layer against real SQLite and real PostgreSQL: the same test bodies for both."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, Table, select

from tests.servers import free_port
from tests.services import PostgresServer, postgres_server
from wallboard.settings import defaults
from wallboard.storage import Database, Migration, Schema, StorageUnavailable, create_tables, database_url, sql

METADATA = MetaData()
notes = Table("test_notes", METADATA,
              Column("tenant", String(32), primary_key=True),
              Column("id", String(64), primary_key=True),
              Column("text", String(200), nullable=False))
V1 = Migration(1, create_tables(notes))
V2 = Migration(2, sql("ALTER TABLE test_notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0"))


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = database_url(defaults().with_values(storage={"path": str(tmp_path / "var" / "wb.db")}))
    else:
        server: PostgresServer = request.getfixturevalue("pg")
        server.psql("DROP TABLE IF EXISTS test_notes; DROP TABLE IF EXISTS storage_migrations")
        url = database_url(defaults().with_values(storage={"database_url": server.url}))
    database = Database(url)
    await database.open()
    yield database
    await database.close()


async def test_migrations_run_once_in_order_and_are_recorded(db: Database) -> None:
    assert await db.version("notes") == 0
    assert await db.migrate(Schema("notes", (V1,))) == 1
    assert await db.migrate(Schema("notes", (V1,))) == 1  # nothing new: nothing run
    assert await db.migrate(Schema("notes", (V1, V2))) == 2
    assert await db.version("notes") == 2
    assert await db.version("other") == 0
    async with db.begin() as conn:
        await conn.execute(notes.insert(), [{"tenant": "t1", "id": "a", "text": "x"}])
    async with db.connect() as conn:
        pinned = (await conn.execute(select(notes.c.id).where(notes.c.tenant == "t1"))).scalars().all()
    assert pinned == ["a"]


async def test_a_failing_migration_leaves_the_version_and_the_tables_as_they_were(db: Database) -> None:
    await db.migrate(Schema("notes", (V1,)))
    broken = Migration(2, sql("ALTER TABLE test_notes ADD COLUMN pinned INTEGER", "THIS IS NOT SQL"))
    with pytest.raises(Exception) as raised:
        await db.migrate(Schema("notes", (V1, broken)))
    assert not isinstance(raised.value, StorageUnavailable)
    assert await db.version("notes") == 1
    assert await db.migrate(Schema("notes", (V1, V2))) == 2  # the column was not left behind


async def test_upsert_inserts_then_replaces_by_key_and_keeps_tenants_apart(db: Database) -> None:
    await db.migrate(Schema("notes", (V1,)))
    async with db.begin() as conn:
        await db.upsert(conn, notes, [{"tenant": "t1", "id": "a", "text": "one"},
                                      {"tenant": "t2", "id": "a", "text": "other tenant"}], ["tenant", "id"])
        await db.upsert(conn, notes, [{"tenant": "t1", "id": "a", "text": "Nguyễn Văn Á"}], ["tenant", "id"])
    async with db.connect() as conn:
        rows = (await conn.execute(select(notes.c.tenant, notes.c.text).order_by(notes.c.tenant))).all()
    assert [tuple(r) for r in rows] == [("t1", "Nguyễn Văn Á"), ("t2", "other tenant")]


def test_schemas_must_number_their_migrations_from_one() -> None:
    with pytest.raises(ValueError, match="numbered"):
        Schema("x", (V2,))


async def test_the_sqlite_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "var" / "wb.db"
    database = Database(database_url(defaults().with_values(storage={"path": str(path)})))
    await database.migrate(Schema("notes", (V1,)))
    await database.close()
    for file in path.parent.iterdir():
        assert stat.S_IMODE(file.stat().st_mode) & 0o077 == 0, file


async def test_postgres_down_is_one_sentence_and_the_database_works_once_it_is_back(pg: PostgresServer) -> None:
    nowhere = Database(database_url(defaults().with_values(
        storage={"database_url": f"postgresql://wb:secret-pw@127.0.0.1:{free_port()}/wb"})))
    with pytest.raises(StorageUnavailable) as raised:
        await nowhere.open()
    message = str(raised.value)
    assert message.count(". ") == 0 and message.endswith(".") and "secret-pw" not in message, message
    assert "PostgreSQL at 127.0.0.1" in message
    await nowhere.close()

    database = Database(database_url(defaults().with_values(storage={"database_url": pg.url})))
    await database.open()
    pg.stop("immediate")
    try:
        with pytest.raises(StorageUnavailable):
            await database.version("notes")
    finally:
        pg.start()
    assert await database.version("notes") >= 0  # a new connection, no restart of ours
    await database.close()


def test_database_url_refuses_other_engines() -> None:
    with pytest.raises(ValueError, match="postgresql://"):
        database_url(defaults().with_values(storage={"database_url": "mysql://x@h/db"}))
