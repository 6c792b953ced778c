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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from wallboard.patches import Op
from wallboard.pbx.client import PbxClient
from wallboard.pbx.errors import PbxError
from wallboard.settings import Settings
from wallboard.state import LiveState

log = logging.getLogger("wallboard.poller")

CIRCUIT_AFTER = 5
CIRCUIT_OPEN_S = 30.0
BACKOFF_CAP_S = 30.0
CDR_READ_CAP = 20_000  # one incremental read never takes more than this many records
PROBE = "agents"  # the source that keeps asking while the others' circuits are open
# (source, seconds, error code or None): told of every read, for the metrics.
PollObserver = Callable[[str, float, str | None], None]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class SourceHealth:
    interval: float
    probe: bool = False
    failures: int = 0
    next_try: float = 0.0  # monotonic seconds; before it the job skips its turn
    last_error: str | None = None
    runs: int = 0
    latencies: list[float] = field(default_factory=list)

    def failed(self, error: str, rng: random.Random) -> None:
        self.failures += 1
        self.last_error = error
        if self.probe:
            delay, least = self.interval, 0.0
        elif self.failures >= CIRCUIT_AFTER:
            delay, least = CIRCUIT_OPEN_S, CIRCUIT_OPEN_S / 2  # an open circuit really holds off
        else:
            delay, least = min(BACKOFF_CAP_S, self.interval * 2 ** (self.failures - 1)), 0.0
        # jitter: a fleet of wallboards does not retry in step
        self.next_try = time.monotonic() + rng.uniform(least, delay)

    def succeeded(self) -> None:
        self.failures = 0
        self.last_error = None
        self.next_try = 0.0

    def close_circuit(self) -> None:
        """The PBX answered another source again: try this one at its next turn."""
        self.next_try = 0.0

    @property
    def circuit_open(self) -> bool:
        return self.failures >= CIRCUIT_AFTER and not self.probe


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
        p = settings.poll
        self.health = {
            "agents": SourceHealth(p.agents_interval), "calls": SourceHealth(p.calls_interval),
            "status": SourceHealth(p.status_interval), "cdr": SourceHealth(p.cdr_interval),
        }
        self.health[PROBE].probe = True
        self.first_success = asyncio.Event()
        self._cdr_started = False
        self._scheduler: AsyncIOScheduler | None = None
        self._reading: set[asyncio.Task[Any]] = set()
        self._stopping = False

    def schedule(self, scheduler: AsyncIOScheduler) -> None:
        jobs: dict[str, Callable[[], Awaitable[None]]] = {
            "agents": self.poll_agents, "calls": self.poll_calls,
            "status": self.poll_status, "cdr": self.poll_cdr,
        }
        self._scheduler = scheduler
        for name, job in jobs.items():
            scheduler.add_job(self._stoppable(name, job), "interval", seconds=self.health[name].interval, id=name,
                              max_instances=1, coalesce=True, next_run_time=_soon())
        scheduler.add_listener(self._skipped, EVENT_JOB_MAX_INSTANCES)

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

    def _skipped(self, event: JobSubmissionEvent) -> None:
        if event.job_id in self.health:
            log.warning("poll %s skipped: the previous read is still running", event.job_id)

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
            if health.failures == 0 or health.last_error != error:
                log.warning("poll %s failed: %s", source, error)
            health.failed(error, self.rng)
            self.observe(source, time.perf_counter() - t0, code)
            self.publish(self.live.apply_failure(source, error, now_ms()))
            return
        self.observe(source, time.perf_counter() - t0, None)
        if health.failures:
            log.info("poll %s recovered after %d failures", source, health.failures)
            if health.probe:
                self._close_circuits()
        health.succeeded()
        self.publish(merge(answer, started))
        if source == "agents":
            self.first_success.set()

    def _close_circuits(self) -> None:
        """The PBX is back: every failing source reads now instead of at its turn."""
        for name, other in self.health.items():
            if other.failures and not other.probe:
                other.close_circuit()
                job = self._scheduler.get_job(name) if self._scheduler else None
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
        async def fetch() -> list[Any]:
            stats = self.live.stats
            if not self._cdr_started or not stats.last_ended:
                start, _ = self.live.time.day_window(now_ms())
                filters: dict[str, object] = {"start_date": start}
            else:
                filters = {"start_date_ended": stats.last_ended}
            records = []
            async for record in self.pbx.iter_cdrs(**filters):
                records.append(record)
                if len(records) >= CDR_READ_CAP:
                    break
            self._cdr_started = True
            return records

        await self._run("cdr", fetch, self.live.apply_cdrs)

    def max_ages(self) -> dict[str, float]:
        return {s: self.settings.stale_after(h.interval) for s, h in self.health.items()}


def _soon() -> Any:
    from datetime import datetime, timedelta

    return datetime.now().astimezone() + timedelta(milliseconds=50)
