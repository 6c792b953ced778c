"""What supervisors set on the board and what must survive a restart: the levels of the
figures (per scope: the floor, a team, a hotline) and the messages to the wall.

SQLite at storage.path, beside the audit log (its own tables; WAL lets both connections
write), on a dedicated thread as audit.py does: the event loop never waits on the disk.
Every row carries its tenant. Rows are kept: a threshold set back to the config's is a
row with NULL levels, a message taken down keeps its text with who took it down, so the
history stands beside the audit log's row of each change.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS board_thresholds (
    tenant TEXT NOT NULL,
    scope TEXT NOT NULL,            -- "" the floor, "team:<name>", "hotline:<number>"
    figure TEXT NOT NULL,           -- watch.py FIGURES
    warn REAL,                      -- NULL (both): back to the config's levels
    alarm REAL,
    updated_at INTEGER NOT NULL,    -- epoch ms
    updated_by TEXT NOT NULL,
    PRIMARY KEY (tenant, scope, figure)
);
CREATE TABLE IF NOT EXISTS wall_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    team TEXT,                      -- NULL: every screen
    text TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    cleared_at INTEGER,
    cleared_by TEXT
);
CREATE INDEX IF NOT EXISTS wall_messages_live ON wall_messages (tenant, expires_at);
"""


class BoardStoreError(Exception):
    """The board's database cannot be used; the message says why in one sentence."""


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
    def __init__(self, path: str | Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = str(path)
        self._clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="board-store")
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

    # -- thresholds ------------------------------------------------------------------

    async def thresholds(self, tenant: str) -> dict[tuple[str, str], tuple[float, float]]:
        rows = await self._run(self._select, "SELECT scope, figure, warn, alarm FROM board_thresholds "
                                             "WHERE tenant = ? AND warn IS NOT NULL", (tenant,))
        return {(scope, figure): (warn, alarm) for scope, figure, warn, alarm in rows}

    async def set_threshold(self, tenant: str, scope: str, figure: str, levels: tuple[float, float] | None,
                            by: str) -> None:
        warn, alarm = levels if levels is not None else (None, None)
        await self._run(self._write, "INSERT INTO board_thresholds VALUES (?, ?, ?, ?, ?, ?, ?) "
                                     "ON CONFLICT (tenant, scope, figure) DO UPDATE SET warn = excluded.warn, "
                                     "alarm = excluded.alarm, updated_at = excluded.updated_at, "
                                     "updated_by = excluded.updated_by",
                        (tenant, scope, figure, warn, alarm, self.now_ms(), by))

    # -- the wall --------------------------------------------------------------------

    async def messages(self, tenant: str) -> list[WallMessage]:
        """The messages standing now (not expired, not taken down), oldest first."""
        rows = await self._run(self._select, "SELECT id, team, text, created_at, expires_at, created_by "
                                             "FROM wall_messages WHERE tenant = ? AND expires_at > ? "
                                             "AND cleared_at IS NULL ORDER BY id", (tenant, self.now_ms()))
        return [WallMessage(*row) for row in rows]

    async def add_message(self, tenant: str, team: str | None, text: str, expires_at: int, by: str) -> WallMessage:
        now = self.now_ms()
        row_id = await self._run(self._write, "INSERT INTO wall_messages (tenant, team, text, created_at, "
                                              "expires_at, created_by) VALUES (?, ?, ?, ?, ?, ?)",
                                 (tenant, team, text, now, expires_at, by))
        return WallMessage(row_id, team, text, now, expires_at, by)

    async def clear_message(self, tenant: str, message_id: int, by: str) -> bool:
        changed = await self._run(self._changes, "UPDATE wall_messages SET cleared_at = ?, cleared_by = ? "
                                                 "WHERE tenant = ? AND id = ? AND cleared_at IS NULL",
                                  (self.now_ms(), by, tenant, message_id))
        return changed > 0

    # -- on the database thread ------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise BoardStoreError("the board's database is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _open_db(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.path, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=5000")
            db.executescript(SCHEMA)
        except sqlite3.Error as e:
            raise BoardStoreError(f"the board's database {self.path!r} cannot be opened: {e}") from None
        self._db = db

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise BoardStoreError("the board's database is not open")
        return self._db

    def _select(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        return self._conn().execute(sql, params).fetchall()

    def _write(self, sql: str, params: tuple[Any, ...]) -> int:
        cursor = self._conn().execute(sql, params)
        return cursor.lastrowid or 0

    def _changes(self, sql: str, params: tuple[Any, ...]) -> int:
        return self._conn().execute(sql, params).rowcount
