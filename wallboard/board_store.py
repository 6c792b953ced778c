"""What supervisors set on the board and what must survive a restart: the levels of the
figures (per scope: the floor, a team, a hotline) and the messages to the wall.

Two tables in the storage database (wallboard/storage: SQLite at storage.path, or the
PostgreSQL of storage.database_url shared by every node), migrated on first use: a
database that cannot be reached raises `BoardStoreError` (the storage layer's
`StorageUnavailable`) and the board keeps running. Every row carries its tenant. Rows
are kept: a threshold set back to the config's is a row with NULL levels, a message
taken down keeps its text with who took it down, so the history stands beside the
audit log's row of each change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)

from wallboard.storage import Database, Migration, Schema, StorageUnavailable

METADATA = MetaData()
thresholds = Table(
    "board_thresholds", METADATA,
    Column("tenant", String(32), primary_key=True),
    Column("scope", Text, primary_key=True),  # "" the floor, "team:<name>", "hotline:<number>"
    Column("figure", Text, primary_key=True),  # watch.py FIGURES
    Column("warn", Float),  # NULL (both): back to the config's levels
    Column("alarm", Float),
    Column("updated_at", BigInteger, nullable=False),  # epoch ms
    Column("updated_by", Text, nullable=False),
)
wall_messages = Table(
    "wall_messages", METADATA,
    Column("id", Integer, primary_key=True),
    Column("tenant", String(32), nullable=False),
    Column("team", Text),  # NULL: every screen
    Column("text", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("cleared_at", BigInteger),
    Column("cleared_by", Text),
    Index("wall_messages_live", "tenant", "expires_at"),
    sqlite_autoincrement=True,
)


def _first(conn: Connection) -> None:
    # An SQLite file of before the storage layer has both tables already, of this shape.
    METADATA.create_all(conn, tables=[thresholds, wall_messages], checkfirst=True)


SCHEMA = Schema("board", (Migration(1, _first),))

# What board.py and web/board_api.py catch: the database cannot be reached now.
BoardStoreError = StorageUnavailable


@dataclass(frozen=True, slots=True)
class WallMessage:
    id: int
    team: str | None
    text: str
    created_at: int
    expires_at: int
    created_by: str

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "team": self.team, "text": self.text, "at": self.created_at,
                "expires": self.expires_at, "by": self.created_by}


class BoardStore:
    """`BoardStore(db)` on the deployment's storage database, or `BoardStore(path)`: an
    SQLite file of its own, closed with the store."""

    def __init__(self, where: Database | str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self._own = not isinstance(where, Database)
        self.db = where if isinstance(where, Database) else Database.sqlite(where)
        self._clock = clock

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def open(self) -> None:
        """Migrate now if the database answers; else on first use."""
        try:
            await self.db.ensure(SCHEMA)
        except StorageUnavailable:
            pass

    async def close(self) -> None:
        if self._own:
            await self.db.close()

    # -- thresholds ------------------------------------------------------------------

    async def thresholds(self, tenant: str) -> dict[tuple[str, str], tuple[float, float]]:
        t = thresholds.c
        await self.db.ensure(SCHEMA)
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(t.scope, t.figure, t.warn, t.alarm)
                                       .where(t.tenant == tenant, t.warn.is_not(None)))).all()
        return {(scope, figure): (warn, alarm) for scope, figure, warn, alarm in rows}

    async def set_threshold(self, tenant: str, scope: str, figure: str, levels: tuple[float, float] | None,
                            by: str) -> None:
        warn, alarm = levels if levels is not None else (None, None)
        await self.db.ensure(SCHEMA)
        async with self.db.begin() as conn:
            await self.db.upsert(conn, thresholds, [{"tenant": tenant, "scope": scope, "figure": figure,
                                                     "warn": warn, "alarm": alarm, "updated_at": self.now_ms(),
                                                     "updated_by": by}], ["tenant", "scope", "figure"])

    # -- the wall --------------------------------------------------------------------

    async def messages(self, tenant: str) -> list[WallMessage]:
        """The messages standing now (not expired, not taken down), oldest first."""
        m = wall_messages.c
        await self.db.ensure(SCHEMA)
        async with self.db.connect() as conn:
            rows = (await conn.execute(
                select(m.id, m.team, m.text, m.created_at, m.expires_at, m.created_by)
                .where(m.tenant == tenant, m.expires_at > self.now_ms(), m.cleared_at.is_(None))
                .order_by(m.id))).all()
        return [WallMessage(*row) for row in rows]

    async def add_message(self, tenant: str, team: str | None, text: str, expires_at: int, by: str) -> WallMessage:
        now = self.now_ms()
        await self.db.ensure(SCHEMA)
        async with self.db.begin() as conn:
            done = await conn.execute(wall_messages.insert().values(
                tenant=tenant, team=team, text=text, created_at=now, expires_at=expires_at, created_by=by))
        row_id = done.inserted_primary_key
        assert row_id is not None
        return WallMessage(int(row_id[0]), team, text, now, expires_at, by)

    async def clear_message(self, tenant: str, message_id: int, by: str) -> bool:
        m = wall_messages.c
        await self.db.ensure(SCHEMA)
        async with self.db.begin() as conn:
            done = await conn.execute(update(wall_messages)
                                      .where(m.tenant == tenant, m.id == message_id, m.cleared_at.is_(None))
                                      .values(cleared_at=self.now_ms(), cleared_by=by))
        return bool(done.rowcount)
