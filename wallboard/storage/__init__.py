"""The storage database: one interface over SQLite (the default, at `storage.path`) and
PostgreSQL (`storage.database_url`, shared by every process of a cluster).

How a module keeps its tables here
----------------------------------
A module declares its tables as SQLAlchemy Core `Table`s on a `MetaData` of its own, each
with a `tenant` column first (every row belongs to a tenant from the start), and one
`Schema`: a group name and its migrations, numbered from 1, append-only:

    METADATA = MetaData()
    notes = Table("notes", METADATA,
                  Column("tenant", String(32), primary_key=True),
                  Column("id", String(64), primary_key=True),
                  Column("text", Text, nullable=False))
    SCHEMA = Schema("notes", (
        Migration(1, create_tables(notes)),
        Migration(2, sql("ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0")),
    ))

and, once at start, `await db.migrate(SCHEMA)`: the migrations the database has not seen
run in order, each in its own transaction, and the group's version is recorded in
`storage_migrations` (PostgreSQL: under an advisory lock, so nodes starting together
migrate once). A released migration is never edited: a change is a new migration. When a
later migration alters a table that migration 1 created from the `Table` object, migration 1
must keep a frozen copy of the first shape (a fresh database runs 1, then 2).

Queries are Core statements run on `async with db.begin() as conn:` (a transaction) or
`db.connect()` (reads); `db.upsert(table, rows, keys)` writes rows whatever the engine.
Any failure to reach the database comes out as `StorageUnavailable` with one sentence;
the caller decides what to do (the board keeps running).
"""

from __future__ import annotations

from wallboard.storage.db import (
    Database,
    Migration,
    Schema,
    StorageUnavailable,
    create_tables,
    database_url,
    sql,
)

__all__ = ["Database", "Migration", "Schema", "StorageUnavailable", "create_tables", "database_url", "sql"]
