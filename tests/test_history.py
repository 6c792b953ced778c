"""The intraday history against the simulator's truth: a simulated day (profile `day`, its
morning prefilled from midnight) read by the real app's poller, stored, read back after a
restart, rebuilt from the CDRs, and past days backfilled from /v1/cdr."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.factories import afternoon_zone
from wallboard.app import create_app, parts_of
from wallboard.history.backfill import backfill
from wallboard.history.buckets import SLOT_MINUTES, Bucket, Intervals, Times
from wallboard.history.recorder import History
from wallboard.history.store import HistoryStore
from wallboard.pbx.client import PbxClient
from wallboard.pbx.events import CallEvent
from wallboard.pbx.times import PbxTime
from wallboard.settings import Settings, defaults
from wallboard.sim import traffic
from wallboard.sim.app import SimOptions, create_sim_app
from wallboard.sim.cdrs import Cdr
from wallboard.sim.day import Rota
from wallboard.sim.roster import build_roster
from wallboard.storage import Database, StorageUnavailable

ZONE = afternoon_zone()  # the simulated day has calls whatever hour the suite runs
CLOCK = PbxTime(ZONE)
SLA_S = 20


@dataclass
class SimPbx:
    app: Any
    http: httpx.AsyncClient

    def pbx(self) -> PbxClient:
        return PbxClient("http://sim", "sim-api-key", http=self.http, timeout=30.0)  # (a loaded test machine)

    @property
    def store(self) -> Any:
        return self.app.state.sim.cdrs


@pytest.fixture
async def sim() -> AsyncIterator[SimPbx]:
    app = create_sim_app(SimOptions(agents=20, seed=3, profile="day", prefill=True, rate=None, speed=1.0,
                                    timezone=ZONE))
    clock = app.state.sim.clock
    stopped = clock.now()
    clock.now = lambda: stopped  # the simulator's time moves only when a test moves it (advance())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app)) as http:
        yield SimPbx(app, http)


def advance(sim: SimPbx, seconds: float) -> None:
    then = sim.app.state.sim.clock.now() + seconds
    sim.app.state.sim.clock.now = lambda: then


def settings_for(tmp_path: Path) -> Settings:
    return defaults().with_values(pbx={"base_url": "http://sim", "api_key": "sim-api-key", "timezone": ZONE},
                                  webhook={"register": False}, storage={"path": str(tmp_path / "wb.db")},
                                  display={"sla_seconds": SLA_S})


def truth(records: list[Cdr]) -> dict[tuple[str, str, str, int], Bucket]:
    """The intervals, counted here from the simulator's own records (not through our parser)."""
    out: dict[tuple[str, str, str, int], Bucket] = defaultdict(Bucket)
    for r in records:
        if r.direction != 1:  # inbound
            continue
        local = datetime.fromtimestamp(r.started, CLOCK.zone)
        day, slot = local.date().isoformat(), (local.hour * 60 + local.minute) // SLOT_MINUTES
        one = Bucket(offered=1)
        # The PBX writes whole seconds: what a reader of its strings sees.
        started, ended = int(r.started), int(r.ended)
        if r.status == "ANSWERED" and r.answered is not None:
            answered = int(r.answered)
            one.answered, one.wait_ms = 1, (answered - started) * 1000
            one.in_sla = int(answered - started <= SLA_S)
            one.talk_ms, one.talked = (ended - answered) * 1000, 1
        else:
            one.missed = 1
            one.abandoned = int(r.cause == "ORIGINATOR_CANCEL")
        groups = [("all", ""), ("hotline", r.to_number)]
        if r.receive_dest:
            groups.append(("team", r.receive_dest))
        if r.extension:
            groups.append(("agent", r.extension))
        for kind, group in groups:
            out[(day, kind, group, slot)].add(one)
    return dict(out)


async def stored(store: HistoryStore, first: str, last: str, expected: dict[Any, Bucket]) -> dict[Any, Bucket]:
    out: dict[Any, Bucket] = {}
    for kind, group in {(k[1], k[2]) for k in expected}:
        for interval in await store.intervals("default", first, last, kind, group):
            if interval.counts != Bucket():
                out[(interval.day, kind, group, interval.slot)] = interval.counts
    return out


async def test_history_equals_the_cdrs_survives_a_restart_and_is_rebuilt(sim: SimPbx, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    app = create_app(settings, pbx=sim.pbx())
    parts = parts_of(app)
    assert parts.history is not None
    await parts.engine.poller.poll_cdr()  # the whole day from midnight, as after a start
    written = await parts.history.write()
    today = datetime.now(CLOCK.zone).date().isoformat()
    records = sim.store.between(CLOCK.day_start_ms(datetime.now().timestamp() * 1000) / 1000, 2e10)
    expected = truth(records)
    assert written == len(expected)
    store = HistoryStore(Database.from_settings(settings))
    assert await stored(store, today, today, expected) == expected
    figures = [b for k, b in expected.items() if k[1] == "all"]
    print(f"\nsimulated day so far: {sum(b.offered for b in figures)} inbound calls in {len(figures)} intervals, "
          f"{len(expected)} interval rows")
    await parts.history.history.close()

    # A restart: the stored day is there before any read, and a webhook alone writes nothing.
    again = create_app(settings, pbx=sim.pbx())
    later = parts_of(again)
    assert later.history is not None
    assert await stored(store, today, today, expected) == expected
    some = next(r for r in reversed(records) if r.direction == 1)  # an inbound one
    later.engine.submit(CallEvent(state="cdr", call_id=some.id.strip(), direction="inbound", hotline=some.to_number,
                                  status=some.status, extension=some.extension,
                                  time_started=CLOCK.parse(some.time_started),
                                  time_answered=CLOCK.parse(some.time_answered),
                                  time_ended=CLOCK.parse(some.time_ended)))
    assert await later.history.write() == 0
    assert await stored(store, today, today, expected) == expected
    # ...and the first read rebuilds it from the CDRs (what the webhook said is only merged),
    # with the calls ended while it was down.
    advance(sim, 600)  # (the simulator's world moves on at the next request it answers)
    await later.engine.poller.poll_cdr()
    await later.history.write()
    records = sim.store.between(CLOCK.day_start_ms(datetime.now().timestamp() * 1000) / 1000, 2e10)
    assert await stored(store, today, today, truth(records)) == truth(records)
    # ...and the next read (incremental) adds what ended since.
    advance(sim, 600)
    await later.engine.poller.poll_cdr()
    await later.history.write()
    records = sim.store.between(CLOCK.day_start_ms(datetime.now().timestamp() * 1000) / 1000, 2e10)
    assert await stored(store, today, today, truth(records)) == truth(records)
    await later.history.history.close()
    await store.db.close()


async def test_backfill_reads_past_days_an_hour_at_a_time_and_resumes(sim: SimPbx, tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    today = datetime.now(CLOCK.zone).date()
    midnight = CLOCK.day_start_ms(datetime.now().timestamp() * 1000) / 1000
    people = build_roster(20, random.Random("roster-3"))
    rota = Rota([p.ext for p in people if p.group >= 0], salt="3", local=sim.app.state.sim.default.world.local)
    yesterday = list(traffic.prefill_day(random.Random(7), rate=8.0, floor=0.1, rota=rota, start=midnight - 86400,
                                         end=midnight, people=people, fmt=sim.app.state.sim.default.world.local.format))
    for record in yesterday:
        sim.store.add(record)
    expected = truth(yesterday)
    assert expected
    store = HistoryStore(Database.from_settings(settings))
    await store.migrate()
    pbx = sim.pbx()
    asked: list[httpx.Request] = []
    sim.http.event_hooks["request"].append(lambda request: _note(asked, request))

    class Stop(Exception):
        pass

    # Stopped in the middle of the day (the PBX gone at the 13th hour)...
    original = pbx.iter_cdrs

    def failing(**filters: Any) -> Any:
        if filters["start_date"].endswith("13:00:00"):
            raise Stop
        return original(**filters)

    pbx.iter_cdrs = failing  # type: ignore[method-assign]
    with pytest.raises(Stop):
        await backfill(pbx, store, tenant="default", clock=CLOCK, sla_seconds=SLA_S, teams={}, days=1, today=today)
    assert (await store.backfill_state("default", (today - timedelta(days=1)).isoformat()))[0] == 13
    pbx.iter_cdrs = original  # type: ignore[method-assign]
    asked.clear()
    done = await backfill(pbx, store, tenant="default", clock=CLOCK, sla_seconds=SLA_S, teams={}, days=1,
                          today=today)
    assert done.hours_read == 11  # ...resumes at the 13th
    first_asked = next(r for r in asked if r.url.params.get("start_date"))
    assert first_asked.url.params["start_date"].endswith(" 13:00:00")
    assert all(r.url.params.get("end_date", "") > r.url.params.get("start_date", "") for r in asked
               if r.url.params.get("start_date"))
    day = (today - timedelta(days=1)).isoformat()
    assert await stored(store, day, day, expected) == expected
    again = await backfill(pbx, store, tenant="default", clock=CLOCK, sla_seconds=SLA_S, teams={}, days=1,
                           today=today)
    assert again.days_skipped == [day] and again.hours_read == 0
    await store.db.close()


async def _note(asked: list[httpx.Request], request: httpx.Request) -> None:
    asked.append(request)


def test_a_later_copy_fills_in_and_teams_recount() -> None:
    intervals = Intervals(CLOCK, SLA_S)
    start = CLOCK.parse("2026-12-03 09:07:00")
    assert start is not None
    ev = CallEvent(state="cdr", call_id="f1", direction="inbound", hotline="19001", status="NO ANSWER",
                   extension="1001", time_started=start, time_ended=start + 30_000)
    intervals.add_event(ev)
    assert intervals.buckets[("2026-12-03", "hotline", "19001", 36)].missed == 1
    intervals.add_event(ev)  # the same copy again: nothing moves
    assert intervals.buckets[("2026-12-03", "all", "", 36)].offered == 1
    intervals.set_teams({"Sales": frozenset({"1001"})})
    assert intervals.buckets[("2026-12-03", "team", "Sales", 36)].offered == 1
    assert sorted(k[1] for k, _ in intervals.take_dirty()) == ["agent", "all", "hotline", "team"]


async def test_the_board_keeps_running_while_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = settings_for(tmp_path).with_values(storage={"database_url": "postgresql://x@127.0.0.1:1/none"})
    history = History(settings)
    assert await history.open() is False
    assert await history.purge(date(2026, 12, 3)) == 0
    with pytest.raises(StorageUnavailable):
        await history.store.migrate()
    await history.close()


@pytest.fixture(scope="module")
def pg() -> Any:
    from tests.services import postgres_server

    with postgres_server() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def storage_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    settings = settings_for(tmp_path)
    if request.param == "postgresql":
        server = request.getfixturevalue("pg")
        server.psql("DROP TABLE IF EXISTS history_intervals, history_samples, history_backfill, storage_migrations")
        settings = settings.with_values(storage={"database_url": server.url})
    return settings


async def test_agents_are_sampled_each_minute_per_floor_and_team(storage_settings: Settings) -> None:
    from tests.factories import agent

    app = create_app(storage_settings.with_values(storage={"history_days": 30}))
    parts = parts_of(app)
    recorder = parts.history
    assert recorder is not None
    recorder.intervals.set_teams({"Sales": frozenset({"1001", "1002"})})
    now = CLOCK.parse("2026-12-03 10:07:30")
    assert now is not None
    parts.engine.live.apply_agents([agent("1001", "oncall", "x"), agent("1002"), agent("1003")], now)
    assert await recorder.sample(now) is False  # not before the day's first read
    recorder.add_cdrs([], True)
    assert await recorder.sample(now)
    store = recorder.history.store
    assert await store.samples("default", "2026-12-03", "all", "") == [(607, 3, 1)]
    assert await store.samples("default", "2026-12-03", "team", "Sales") == [(607, 2, 1)]
    # Retention: days before history_days ago go, samples and intervals alike.
    old = CLOCK.parse("2026-10-01 09:00:00")
    assert old is not None
    recorder.add_event(CallEvent(state="cdr", call_id="old-1", direction="inbound", hotline="19001",
                                 status="ANSWERED", extension="1001", time_started=old, time_answered=old + 3000,
                                 time_ended=old + 60_000))
    await recorder.write()
    assert await store.stored_days("default") == ["2026-10-01"]
    assert await recorder.history.purge(date(2026, 12, 4)) == 4  # all, hotline, team, agent
    assert await store.stored_days("default") == []
    assert await store.samples("default", "2026-12-03", "all", "") == [(607, 3, 1)]  # within 30 days
    await recorder.history.close()


@given(st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31)),
       st.sampled_from(["Asia/Ho_Chi_Minh", "Europe/Berlin", "America/St_Johns", "Australia/Lord_Howe"]))
def test_the_fast_times_equal_pbx_time(moment: datetime, zone: str) -> None:
    clock = PbxTime(zone)
    times = Times(clock)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    assert times.parse(text) == clock.parse(text)
    assert times.parse(text) == clock.parse(text)  # from the cache
    at = clock.parse(text)
    assert at is not None
    local = datetime.fromtimestamp(at / 1000, clock.zone)
    assert times.slot_of(at) == (local.date().isoformat(), (local.hour * 60 + local.minute) // SLOT_MINUTES)
    for odd in ("2026-12-03 09:61:00", "2026-12-03 09:00:60", "2026-12-3 9:00:00", "", "2026-12-03 24:00:00"):
        assert times.parse(odd) == clock.parse(odd)
