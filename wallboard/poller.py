"""The scheduled reads of the PBX, one APScheduler job per source.

Each job: ask the PBX (within a deadline below its interval), merge the answer
into the state, publish the change. A failing source backs off with full jitter
and, after `CIRCUIT_AFTER` failures in a row, its circuit opens: it is left
alone for half to all of `CIRCUIT_OPEN_S`, so a dead PBX is not hammered. The
agents read is the probe: it never waits longer than its own interval, so while
the PBX is down it costs one light request per interval, and its first success
after failures closes every circuit, so the board recovers within an interval of
the PBX coming back (the other reads are run at once then). `max_instances=1`
means two reads of one source never overlap; a run skipped for that is logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from wallboard.health import PROBE, SOURCES
from wallboard.patches import Op
from wallboard.pbx.client import PbxClient
from wallboard.pbx.errors import PbxError
from wallboard.settings import Settings
from wallboard.state import LiveState

log = logging.getLogger("wallboard.poller")

CDR_READ_CAP = 20_000  # one incremental read never takes more than this many records
FIRST_READ_SPREAD_S = 10.0  # tenants' first reads spread over at most this (or the interval)
# (source, seconds, error code or None): told of every read, for the metrics.
PollObserver = Callable[[str, float, str | None], None]


# The schedulers that already log skipped reads: one listener each, however many pollers
# (tenants) share it. APScheduler calls every listener on every job event, so a listener
# per tenant made each of the thousands of job runs a second cost one call per tenant.
_LOGGING_SKIPS: weakref.WeakSet[AsyncIOScheduler] = weakref.WeakSet()


def now_ms() -> int:
    return int(time.time() * 1000)


class Poller:
    def __init__(self, settings: Settings, pbx: PbxClient, live: LiveState,
                 publish: Callable[[list[Op]], None],
                 observe: PollObserver | None = None,
                 seed: int | None = None) -> None:
        self.settings = settings
        self.pbx = pbx
        self.live = live
        self.publish = publish
        self.observe = observe or (lambda source, seconds, error: None)
        self.rng = random.Random(seed)
        self.health = live.health  # shared with the state: one place for a source's health
        for source in SOURCES:
            self.health[source].interval = getattr(settings.poll, f"{source}_interval")
            self.health[source].probe = source == PROBE
        self.first_success = asyncio.Event()
        self._cdr_started = False
        # Each CDR batch read, and whether it is the whole day from midnight (history/recorder.py).
        self.cdr_listeners: list[Callable[[list[Any], bool], None]] = []
        self._scheduler: AsyncIOScheduler | None = None
        self._prefix = ""
        self._reading: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def schedule(self, scheduler: AsyncIOScheduler, *, phase: float = 0.0, prefix: str = "") -> None:
        """One job per source, named `prefix + source` (a tenant's id: several share one
        scheduler). The first reads come within `phase` of a few seconds, then every
        interval from there, so tenants' reads spread over each interval."""
        jobs: dict[str, Callable[[], Awaitable[None]]] = {
            "agents": self.poll_agents, "calls": self.poll_calls,
            "status": self.poll_status, "cdr": self.poll_cdr,
        }
        self._scheduler = scheduler
        self._prefix = prefix
        for name, job in jobs.items():
            interval = self.health[name].interval
            scheduler.add_job(self._stoppable(name, job), "interval", seconds=interval, id=prefix + name,
                              max_instances=1, coalesce=True,
                              next_run_time=_soon(phase * min(interval, FIRST_READ_SPREAD_S)))
        if scheduler not in _LOGGING_SKIPS:
            scheduler.add_listener(_skipped, EVENT_JOB_MAX_INSTANCES)
            _LOGGING_SKIPS.add(scheduler)

    def _stoppable(self, name: str, job: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        """A read cut short by `stop` is a normal stop, not an error."""
        async def run() -> None:
            if self._stopping:
                return  # handed to the loop just before the scheduler paused
            task = asyncio.current_task()
            assert task is not None
            self._reading.add(task)
            try:
                await job()
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
                log.info("poll %s stopped: shutting down", name)
            finally:
                self._reading.discard(task)

        run.__qualname__ = f"Poller.poll_{name}"
        return run

    async def stop(self) -> None:
        """End the reads still running, before the HTTP client they use is closed (see
        `app.stop_jobs`). Reads already handed to the loop start, see `_stopping` and return."""
        self._stopping = True
        await asyncio.sleep(0)
        for task in self._reading:
            task.cancel()
        if self._reading:
            await asyncio.wait(self._reading, timeout=5)

    async def run_all_once(self) -> None:
        await asyncio.gather(self.poll_agents(), self.poll_calls(), self.poll_status(),
                             self.poll_cdr())

    async def _run(self, source: str, fetch: Callable[[], Awaitable[Any]],
                   merge: Callable[[Any, int], list[Op]]) -> None:
        health = self.health[source]
        if time.monotonic() < health.next_try:
            return
        health.runs += 1
        started = now_ms()
        t0 = time.perf_counter()
        # Below the interval, so a slow PBX never makes reads of one source pile up.
        # The CDR read may scroll through several requests, each bounded by the
        # client's own timeout: the whole read gets the interval, and at least that.
        limit = min(self.settings.pbx.timeout, health.interval * 0.9)
        if source == "cdr":
            limit = max(self.settings.pbx.timeout, health.interval * 0.9)
        try:
            async with asyncio.timeout(limit):
                answer = await fetch()
        except (PbxError, TimeoutError) as e:
            error = str(e) if isinstance(e, PbxError) else f"no answer within {limit:g} s"
            code = e.code if isinstance(e, PbxError) else "TIMEOUT"
            if health.failures == 0 or health.error != error:
                log.warning("poll %s failed: %s", source, error)
            self.observe(source, time.perf_counter() - t0, code)
            if health.failed(error, self.rng, code):
                self.publish(self.live.sources_op())
            return
        self.observe(source, time.perf_counter() - t0, None)
        failures = health.failures
        self.publish(merge(answer, started))  # marks the source ok (LiveState._mark)
        if failures:
            log.info("poll %s recovered after %d failures", source, failures)
            if health.probe:
                self._close_circuits()
        if source == "agents":
            self.first_success.set()

    def _close_circuits(self) -> None:
        """The PBX is back: every failing source reads now instead of at its turn."""
        for name, other in self.health.sources.items():
            if other.failures and not other.probe:
                other.close_circuit()
                job = self._scheduler.get_job(self._prefix + name) if self._scheduler else None
                if job is not None:
                    job.modify(next_run_time=_soon())

    async def poll_agents(self) -> None:
        await self._run("agents", self.pbx.monitor_agents, self.live.apply_agents)

    async def poll_calls(self) -> None:
        await self._run("calls", self.pbx.list_calls, self.live.apply_calls)

    async def poll_status(self) -> None:
        async def fetch() -> Any:
            start, end = self.live.time.day_window(now_ms())
            return await self.pbx.call_status(start, end)

        await self._run("status", fetch, self.live.apply_status)

    async def poll_cdr(self) -> None:
        """Today's CDRs: the whole day once, then only those ended since the last read."""
        whole_day = False

        async def fetch() -> list[Any]:
            nonlocal whole_day
            stats = self.live.stats
            if not self._cdr_started or not stats.last_ended:
                start, _ = self.live.time.day_window(now_ms())
                filters: dict[str, object] = {"start_date": start}
                whole_day = True
            else:
                filters = {"start_date_ended": stats.last_ended}
            records = []
            async for record in self.pbx.iter_cdrs(**filters):
                records.append(record)
                if len(records) >= CDR_READ_CAP:
                    break
            self._cdr_started = True
            return records

        def merge(records: list[Any], started: int) -> list[Op]:
            for listener in self.cdr_listeners:
                listener(records, whole_day)
            return self.live.apply_cdrs(records, started)

        await self._run("cdr", fetch, merge)

    def max_ages(self) -> dict[str, float]:
        return {s: self.settings.stale_after(h.interval) for s, h in self.health.sources.items()}


def _skipped(event: JobSubmissionEvent) -> None:
    """A read not started because the last of its source (`source` or `tenant:source`) runs still."""
    if event.job_id.rpartition(":")[2] in SOURCES:
        log.warning("poll %s skipped: the previous read is still running", event.job_id)


def _soon(after: float = 0.0) -> Any:
    from datetime import datetime, timedelta

    return datetime.now().astimezone() + timedelta(seconds=0.05 + after)
