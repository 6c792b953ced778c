"""The history while the board runs: each tenant's CDRs counted into intervals as they come
(the poller's batches and the `cdr` webhooks, a few dictionary operations per record, no
I/O on that path), written by a background job every few seconds, the agents sampled once
a minute, and days past `storage.history_days` deleted.

After a restart the poller's first read takes the whole day from midnight again, so today's
intervals are rebuilt from the CDRs; nothing is written before that read (a `cdr` webhook
alone would otherwise overwrite a stored interval with a part of it). The storage database
being down never stops the board: the intervals stay dirty and are written once it is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from wallboard.engine import Engine
from wallboard.history.buckets import Intervals
from wallboard.history.store import HistoryStore
from wallboard.settings import Settings
from wallboard.storage import Database, StorageUnavailable

log = logging.getLogger("wallboard.history")

WRITE_EVERY_S = 10.0
SAMPLE_EVERY_S = 60.0
PURGE_EVERY_S = 3600.0


def configured_teams(settings: Settings) -> dict[str, frozenset[str]]:
    """`[[teams]]` as name -> extensions; empty when none are configured."""
    return {team.name: frozenset(team.extensions) for team in settings.teams}


class History:
    """The deployment's history: one database and its tables, shared by the tenants."""

    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self.settings = settings
        self.db = db or Database.from_settings(settings)
        self.store = HistoryStore(self.db)
        self.ready = False
        self._said: str | None = None

    async def open(self) -> bool:
        """Migrate the tables; False (said once in the log) while the database cannot be reached."""
        if self.ready:
            return True
        try:
            await self.store.migrate()
        except StorageUnavailable as e:
            self.unavailable(e)
            return False
        self.ready = True
        self._said = None
        return True

    def unavailable(self, error: StorageUnavailable) -> None:
        if self._said != str(error):
            log.warning("history not stored for now: %s", error)
            self._said = str(error)

    def recovered(self) -> None:
        if self._said is not None:
            log.info("history: the storage database answers again")
            self._said = None

    async def close(self) -> None:
        await self.db.close()

    def start(self, scheduler: AsyncIOScheduler) -> None:
        scheduler.add_job(self.purge, "interval", seconds=PURGE_EVERY_S, id="history:purge", max_instances=1,
                          coalesce=True, next_run_time=datetime.now().astimezone() + timedelta(seconds=30))

    async def purge(self, today: date | None = None) -> int:
        days = self.settings.storage.history_days
        if days <= 0 or not await self.open():
            return 0
        today = today or datetime.now(ZoneInfo(self.settings.pbx.timezone)).date()
        try:
            deleted = await self.store.purge((today - timedelta(days=days)).isoformat())
        except StorageUnavailable as e:
            self.unavailable(e)
            return 0
        if deleted:
            log.info("history: %d intervals older than %d days deleted", deleted, days)
        return deleted

    def recorder(self, tenant: str, settings: Settings, engine: Engine) -> Recorder:
        return Recorder(self, tenant, settings, engine)


class Recorder:
    """One tenant's intervals, fed by its engine."""

    def __init__(self, history: History, tenant: str, settings: Settings, engine: Engine) -> None:
        self.history = history
        self.tenant = tenant
        self.engine = engine
        self.intervals = Intervals(engine.time, settings.display.sla_seconds, configured_teams(settings))
        self.synced = False  # a read of the whole day has come: writing cannot lose counts
        self._today: date | None = None
        engine.poller.cdr_listeners.append(self.add_cdrs)
        engine.cdr_listeners.append(self.add_event)

    # -- the hot path: counting only --------------------------------------------------

    def add_cdrs(self, records: Iterable[Any], whole_day: bool) -> None:
        self.intervals.add_cdrs(records)
        self.synced = self.synced or whole_day

    def add_event(self, event: Any) -> None:
        self.intervals.add_event(event)

    # -- background jobs -------------------------------------------------------------

    def start(self, scheduler: AsyncIOScheduler, prefix: str) -> None:
        scheduler.add_job(self.write, "interval", seconds=WRITE_EVERY_S, id=prefix + "history:write",
                          max_instances=1, coalesce=True)
        scheduler.add_job(self.sample, "interval", seconds=SAMPLE_EVERY_S, id=prefix + "history:sample",
                          max_instances=1, coalesce=True)

    async def stop(self) -> None:
        await self.write()

    async def write(self) -> int:
        """The intervals changed since the last write; how many were written."""
        if not self.synced or not self.intervals.dirty or not await self.history.open():
            return 0
        items = self.intervals.take_dirty()
        try:
            await self.history.store.write(self.tenant, items)
        except StorageUnavailable as e:
            self.intervals.dirty.update(key for key, _ in items)
            self.history.unavailable(e)
            return 0
        self.history.recovered()
        today = datetime.now(self.engine.time.zone).date()
        if today != self._today:  # once a day, not a pass over the flows every write
            self._today = today
            self.intervals.forget_before((today - timedelta(days=1)).isoformat())  # a call may end after midnight
        return len(items)

    def counts(self) -> list[tuple[str, str, int, int]]:
        """(kind, group, logged in, talking) of the floor and of each team, now."""
        agents = self.engine.live.agents
        on = {ext for ext, a in agents.items() if a.get("state") != "offline"}
        talking = {ext for ext, a in agents.items() if a.get("state") == "oncall"}
        out = [("all", "", len(on), len(talking))]
        for name, exts in self.intervals.members().items():
            out.append(("team", name, len(on & exts), len(talking & exts)))
        return out

    async def sample(self, now_ms: int | None = None) -> bool:
        if not self.synced or not await self.history.open():
            return False
        local = datetime.fromtimestamp((now_ms or time.time() * 1000) / 1000, self.engine.time.zone)
        try:
            await self.history.store.write_samples(self.tenant, local.date().isoformat(),
                                                   local.hour * 60 + local.minute, self.counts())
        except StorageUnavailable as e:
            self.history.unavailable(e)
            return False
        return True
