"""The history's tables in the storage database, and the reads the pages and exports make.

    history_intervals  one row per tenant, day, kind (all / hotline / team / agent), group and
                       15-minute slot: the counts of buckets.Bucket
    history_samples    agents logged in and talking, per tenant, day, kind, group and minute
    history_backfill   what `wallboard backfill` has read of a past day: the next hour to read
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, Integer, MetaData, SmallInteger, String, Table, delete, func, select

from wallboard.history.buckets import COUNT_FIELDS, SLOTS_PER_DAY, Bucket, Key
from wallboard.storage import Database, Migration, Schema, create_tables

METADATA = MetaData()
WRITE_CHUNK = 500


def _tenant() -> Column[str]:
    return Column("tenant", String(32), primary_key=True)


intervals = Table(
    "history_intervals", METADATA,
    _tenant(),
    Column("day", String(10), primary_key=True),  # PBX local date, YYYY-MM-DD
    Column("kind", String(8), primary_key=True),
    Column("grp", String(64), primary_key=True),  # "" for all; the hotline, team name or extension
    Column("slot", SmallInteger, primary_key=True),  # 0..95: the quarter of an hour the calls started in
    *(Column(name, BigInteger if name.endswith("_ms") else Integer, nullable=False, default=0)
      for name in COUNT_FIELDS),
    Column("updated_at", BigInteger, nullable=False),
)
samples = Table(
    "history_samples", METADATA,
    _tenant(),
    Column("day", String(10), primary_key=True),
    Column("kind", String(8), primary_key=True),  # all / team
    Column("grp", String(64), primary_key=True),
    Column("minute", SmallInteger, primary_key=True),  # 0..1439, PBX local
    Column("logged_in", Integer, nullable=False),
    Column("talking", Integer, nullable=False),
)
backfill = Table(
    "history_backfill", METADATA,
    _tenant(),
    Column("day", String(10), primary_key=True),
    Column("next_hour", SmallInteger, nullable=False),  # 24: the day is read
    Column("records", Integer, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

SCHEMA = Schema("history", (Migration(1, create_tables(intervals, samples, backfill)),))


@dataclass(frozen=True, slots=True)
class Interval:
    day: str
    slot: int
    counts: Bucket

    @property
    def start(self) -> str:
        minutes = self.slot * 15
        return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _now() -> int:
    return int(time.time() * 1000)


class HistoryStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def migrate(self) -> int:
        return await self.db.migrate(SCHEMA)

    async def write(self, tenant: str, items: Sequence[tuple[Key, Bucket]]) -> None:
        """Upserts in chunks, the loop free between them: SQLAlchemy builds the statements on
        the event loop's thread, and a whole day after a restart is thousands of rows."""
        now = _now()
        for start in range(0, len(items), WRITE_CHUNK):
            rows = [{"tenant": tenant, "day": day, "kind": kind, "grp": group, "slot": slot,
                     **bucket.values(), "updated_at": now}
                    for (day, kind, group, slot), bucket in items[start:start + WRITE_CHUNK]]
            async with self.db.begin() as conn:
                await self.db.upsert(conn, intervals, rows, ["tenant", "day", "kind", "grp", "slot"])
            await asyncio.sleep(0)

    async def write_samples(self, tenant: str, day: str, minute: int,
                            counts: Iterable[tuple[str, str, int, int]]) -> None:
        rows = [{"tenant": tenant, "day": day, "kind": kind, "grp": group, "minute": minute,
                 "logged_in": logged_in, "talking": talking} for kind, group, logged_in, talking in counts]
        async with self.db.begin() as conn:
            await self.db.upsert(conn, samples, rows, ["tenant", "day", "kind", "grp", "minute"])

    async def intervals(self, tenant: str, first: str, last: str, kind: str, group: str) -> list[Interval]:
        """Every stored slot of one group from day `first` to day `last` (inclusive), in order."""
        t = intervals.c
        query = (select(t.day, t.slot, *(t[f] for f in COUNT_FIELDS))
                 .where(t.tenant == tenant, t.day >= first, t.day <= last, t.kind == kind, t.grp == group)
                 .order_by(t.day, t.slot))
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [Interval(r[0], r[1], Bucket(*r[2:])) for r in rows]

    async def day_curve(self, tenant: str, day: str, kind: str, group: str) -> list[Bucket]:
        """One day's 96 slots, empty ones as zeros."""
        curve = [Bucket() for _ in range(SLOTS_PER_DAY)]
        for interval in await self.intervals(tenant, day, day, kind, group):
            if 0 <= interval.slot < SLOTS_PER_DAY:
                curve[interval.slot] = interval.counts
        return curve

    async def totals(self, tenant: str, first: str, last: str, kind: str) -> dict[str, Bucket]:
        """Per group of a kind (e.g. per agent), the days' counts added up."""
        t = intervals.c
        query = (select(t.grp, *(func.sum(t[f]) for f in COUNT_FIELDS))
                 .where(t.tenant == tenant, t.day >= first, t.day <= last, t.kind == kind)
                 .group_by(t.grp).order_by(t.grp))
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
        return {r[0]: Bucket(*(int(v or 0) for v in r[1:])) for r in rows}

    async def groups(self, tenant: str, first: str, last: str) -> dict[str, list[str]]:
        """The hotlines, teams and agents with calls in those days (for the pickers)."""
        t = intervals.c
        query = (select(t.kind, t.grp).distinct()
                 .where(t.tenant == tenant, t.day >= first, t.day <= last, t.kind != "all").order_by(t.kind, t.grp))
        out: dict[str, list[str]] = {"hotline": [], "team": [], "agent": []}
        async with self.db.connect() as conn:
            for kind, group in (await conn.execute(query)).all():
                out.setdefault(kind, []).append(group)
        return out

    async def samples(self, tenant: str, day: str, kind: str, group: str) -> list[tuple[int, int, int]]:
        """(minute, logged in, talking) of one day, in order."""
        t = samples.c
        query = (select(t.minute, t.logged_in, t.talking)
                 .where(t.tenant == tenant, t.day == day, t.kind == kind, t.grp == group).order_by(t.minute))
        async with self.db.connect() as conn:
            return [(r[0], r[1], r[2]) for r in (await conn.execute(query)).all()]

    async def backfill_state(self, tenant: str, day: str) -> tuple[int, int]:
        """(next hour to read, records read so far) of a past day; (0, 0) when never begun."""
        t = backfill.c
        async with self.db.connect() as conn:
            row = (await conn.execute(select(t.next_hour, t.records)
                                      .where(t.tenant == tenant, t.day == day))).first()
        return (row[0], row[1]) if row is not None else (0, 0)

    async def write_hour(self, tenant: str, day: str, next_hour: int, records: int,
                         items: Sequence[tuple[Key, Bucket]]) -> None:
        """A backfilled hour's intervals and the cursor past it, in one transaction: a
        backfill stopped anywhere resumes at the first hour not written."""
        now = _now()
        rows = [{"tenant": tenant, "day": d, "kind": kind, "grp": group, "slot": slot,
                 **bucket.values(), "updated_at": now} for (d, kind, group, slot), bucket in items]
        async with self.db.begin() as conn:
            await self.db.upsert(conn, intervals, rows, ["tenant", "day", "kind", "grp", "slot"])
            await self.db.upsert(conn, backfill, [{"tenant": tenant, "day": day, "next_hour": next_hour,
                                                   "records": records, "updated_at": now}], ["tenant", "day"])

    async def purge(self, before: str) -> int:
        """Delete every tenant's days before `before`; the rows of intervals deleted."""
        async with self.db.begin() as conn:
            done = await conn.execute(delete(intervals).where(intervals.c.day < before))
            await conn.execute(delete(samples).where(samples.c.day < before))
            await conn.execute(delete(backfill).where(backfill.c.day < before))
        return int(done.rowcount or 0)

    async def stored_days(self, tenant: str) -> list[str]:
        t = intervals.c
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(t.day).distinct().where(t.tenant == tenant).order_by(t.day))).all()
        return [r[0] for r in rows]


def rows_of(items: Iterable[Interval]) -> list[dict[str, Any]]:
    return [{"day": i.day, "slot": i.slot, "start": i.start, **i.counts.figures()} for i in items]
