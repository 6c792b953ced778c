from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from tests.factories import agent, live, status
from wallboard.app import stop_jobs
from wallboard.health import CIRCUIT_AFTER, CIRCUIT_OPEN_S, SourceHealth
from wallboard.patches import Op
from wallboard.pbx.client import PbxClient
from wallboard.pbx.errors import PbxError
from wallboard.poller import Poller
from wallboard.settings import defaults

Answer = Callable[[], Awaitable[Any]]


class FakePbx:
    """Each read answers what its slot says: a value, or raises what it holds."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.agents: Answer = self._value([agent("1001"), agent("1002", "oncall", "c-1")])
        self.call_list: Answer = self._value([])
        self.status: Answer = self._value(status(ANSWERED=3))

    @staticmethod
    def _value(value: Any) -> Answer:
        async def answer() -> Any:
            return value
        return answer

    async def _count(self, name: str, answer: Answer) -> Any:
        self.calls[name] = self.calls.get(name, 0) + 1
        return await answer()

    async def monitor_agents(self) -> Any:
        return await self._count("agents", self.agents)

    async def list_calls(self) -> Any:
        return await self._count("calls", self.call_list)

    async def call_status(self, start: str, end: str) -> Any:
        return await self._count("status", self.status)

    async def iter_cdrs(self, **filters: object) -> Any:
        self.calls["cdr"] = self.calls.get("cdr", 0) + 1
        for _ in ():
            yield _


def failing(code: str = "HTTP_503") -> Answer:
    async def answer() -> Any:
        raise PbxError(code, "outage", status=503)
    return answer


def make(interval: float = 1.0, timeout: float = 5.0) -> tuple[Poller, FakePbx, list[list[Op]]]:
    settings = defaults().with_values(
        pbx={"timeout": timeout},
        poll={"agents_interval": interval, "calls_interval": interval,
              "status_interval": interval, "cdr_interval": interval})
    pbx = FakePbx()
    published: list[list[Op]] = []
    poller = Poller(settings, cast(PbxClient, pbx), live(), published.append, seed=1)
    return poller, pbx, published


def test_backoff_grows_with_full_jitter_and_the_circuit_opens() -> None:
    import random

    health = SourceHealth(interval=2.0)
    rng = random.Random(3)
    for n in range(1, CIRCUIT_AFTER):
        before = time.monotonic()
        health.failed("boom", rng)
        assert before <= health.next_try <= time.monotonic() + 2.0 * 2 ** (n - 1)
        assert not health.circuit_open
    for _ in range(20):  # open, and each try on it: held off half to all of CIRCUIT_OPEN_S
        before = time.monotonic()
        health.failed("boom", rng)
        assert health.circuit_open
        assert before + CIRCUIT_OPEN_S / 2 <= health.next_try <= time.monotonic() + CIRCUIT_OPEN_S
    assert health.succeeded(1000)  # news: the screens are told
    assert (health.failures, health.next_try, health.error, health.ok) == (0, 0.0, None, True)
    assert not health.succeeded(2000)  # ok again: nothing to tell, only the time moves
    assert health.view() == {"ok": True, "at": 2000, "error": None}


def test_jitter_spreads_the_retries() -> None:
    import random

    rng = random.Random(5)
    waits = set()
    for _ in range(20):
        h = SourceHealth(interval=10.0, failures=3)
        h.failed("boom", rng)
        waits.add(round(h.next_try - time.monotonic(), 1))
    assert len(waits) > 10


def test_the_probe_never_waits_longer_than_its_interval() -> None:
    import random

    probe = SourceHealth(interval=2.0, probe=True)
    for _ in range(CIRCUIT_AFTER * 3):
        probe.failed("down", random.Random(1))
        assert probe.next_try <= time.monotonic() + 2.0
    assert not probe.circuit_open


async def test_a_failing_source_is_skipped_until_its_backoff_ends() -> None:
    poller, pbx, published = make()
    pbx.call_list = failing()
    assert published == []
    await poller.poll_calls()
    assert pbx.calls["calls"] == 1
    assert published  # the failure went out to the screens
    assert poller.live.sources["calls"]["ok"] is False
    assert "outage" in poller.live.sources["calls"]["error"]
    poller.health["calls"].next_try = time.monotonic() + 60
    await poller.poll_calls()
    assert pbx.calls["calls"] == 1  # held back, the PBX not asked


async def test_the_probe_recovering_closes_every_circuit() -> None:
    poller, pbx, _ = make()
    pbx.agents = pbx.call_list = pbx.status = failing()
    for _ in range(CIRCUIT_AFTER):
        for h in poller.health.sources.values():
            h.next_try = 0.0
        await poller.run_all_once()
    assert poller.health["calls"].circuit_open and poller.health["status"].circuit_open
    assert poller.health["calls"].next_try > 0.0  # waiting out its circuit

    pbx.agents = FakePbx._value([agent("1001")])
    pbx.call_list = FakePbx._value([])
    poller.health["agents"].next_try = 0.0
    await poller.poll_agents()
    assert poller.live.sources["agents"]["ok"] is True
    assert all(h.next_try == 0.0 for h in poller.health.sources.values())
    await poller.poll_calls()
    assert poller.live.sources["calls"]["ok"] is True
    assert not poller.health["calls"].circuit_open


async def test_a_hanging_pbx_is_given_up_below_the_interval() -> None:
    poller, pbx, _ = make(interval=0.4, timeout=5.0)

    async def hang() -> Any:
        await asyncio.sleep(30)

    pbx.agents = hang
    t0 = time.perf_counter()
    await poller.poll_agents()
    took = time.perf_counter() - t0
    assert took < 2.0  # the interval's deadline ended it, not the client's 5 s nor the 30 s hang
    assert poller.live.sources["agents"] == {"ok": False, "at": None,
                                             "error": "no answer within 0.36 s"}


async def test_garbage_is_one_log_line_and_leaves_the_data_alone(caplog: pytest.LogCaptureFixture) -> None:
    poller, pbx, _ = make()
    await poller.poll_agents()
    before = dict(poller.live.agents)
    assert before
    pbx.agents = failing("BAD_RESPONSE")
    with caplog.at_level(logging.INFO, logger="wallboard.poller"):
        for _ in range(3):
            poller.health["agents"].next_try = 0.0
            await poller.poll_agents()
    assert poller.live.agents == before
    lines = [r.getMessage() for r in caplog.records if r.name == "wallboard.poller"]
    assert lines == ["poll agents failed: BAD_RESPONSE: outage (HTTP 503)"]


async def test_observe_sees_latency_and_error_codes() -> None:
    seen: list[tuple[str, str | None]] = []
    poller, pbx, _ = make()
    poller.observe = lambda source, seconds, error: seen.append((source, error))
    await poller.poll_status()
    pbx.status = failing("TIMEOUT")
    await poller.poll_status()
    assert seen == [("status", None), ("status", "TIMEOUT")]


async def test_an_overlapping_run_is_skipped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    poller, pbx, _ = make(interval=0.2)
    release = asyncio.Event()
    entered = asyncio.Event()

    async def stubborn() -> Any:
        # ignores the deadline once, like a merge that takes too long would
        entered.set()
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            await release.wait()
        return []

    pbx.agents = stubborn
    scheduler = AsyncIOScheduler()
    with caplog.at_level(logging.WARNING, logger="wallboard.poller"):
        scheduler.start()
        poller.schedule(scheduler)
        for job in scheduler.get_jobs():
            if job.id != "agents":
                job.remove()
        await asyncio.wait_for(entered.wait(), 5)
        deadline = time.monotonic() + 5
        while not any("skipped" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "no skipped run logged"
            await asyncio.sleep(0.05)
        release.set()
        scheduler.shutdown(wait=False)
    assert any(r.getMessage() == "poll agents skipped: the previous read is still running"
               for r in caplog.records)
    assert pbx.calls["agents"] == 1


async def test_stop_ends_the_reads_in_flight_before_the_client_is_closed(caplog: pytest.LogCaptureFixture) -> None:
    """The app closes its HTTP client right after `stop_jobs`: no read may still be going then."""
    poller, pbx, _ = make(interval=60.0)
    entered, ended = asyncio.Event(), asyncio.Event()

    async def slow() -> Any:
        entered.set()
        try:
            await asyncio.sleep(30)  # a long CDR scroll, say
        finally:
            ended.set()

    pbx.agents = slow
    scheduler = AsyncIOScheduler()
    scheduler.start()
    poller.schedule(scheduler)
    await asyncio.wait_for(entered.wait(), 5)
    with caplog.at_level(logging.INFO):
        await stop_jobs(scheduler, poller)
        assert ended.is_set(), "a read was still running when stop_jobs() returned"
    assert "poll agents stopped: shutting down" in caplog.text
    assert "raised an exception" not in caplog.text


async def test_stopping_never_logs_a_job_as_failed(caplog: pytest.LogCaptureFixture) -> None:
    """Jobs every millisecond, stopped at any moment: none is cancelled unstarted or mid-read
    with an error logged (APScheduler's own shutdown does that: it acts a turn late)."""
    async def other_job() -> None:  # like the app's tick, ping and sweep
        await asyncio.sleep(0)

    with caplog.at_level(logging.INFO, logger="apscheduler"):
        for n in range(40):
            poller, pbx, _ = make(interval=1.0)
            for health in poller.health.sources.values():
                health.interval = 0.001  # below what the settings allow: a job in every turn

            async def read() -> Any:
                await asyncio.sleep(0.0005)
                return []

            pbx.agents = pbx.call_list = read
            scheduler = AsyncIOScheduler()
            scheduler.start()
            poller.schedule(scheduler)
            scheduler.add_job(other_job, "interval", seconds=0.001, max_instances=1, coalesce=True)
            await asyncio.sleep(0.003 + (n % 7) * 0.0013)
            await stop_jobs(scheduler, poller)
            await asyncio.sleep(0.01)  # the scheduler's deferred shutdown runs
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
