"""The day profile: a simulated day that looks like a call center's day.

A day is driven here by the model alone (no clock, no HTTP), from a fixed local midnight,
so these tests mean the same at whatever hour they run.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from dataclasses import dataclass, field

from tests.sim_helpers import running_sim
from wallboard.sim import day, draws
from wallboard.sim.cdrs import Cdr, CdrStore
from wallboard.sim.clock import LocalTime
from wallboard.sim.day import Rota
from wallboard.sim.roster import build_roster
from wallboard.sim.traffic import Traffic, prefill_day
from wallboard.sim.world import World

LOCAL = LocalTime("Asia/Ho_Chi_Minh")
MIDNIGHT = LOCAL.parse("2026-12-03 00:00:00")
DAY = 86_400.0
MORNING_PEAK, LUNCH, AFTERNOON_PEAK, NIGHT = (9, 10), (12,), (14, 15), (0, 1, 2, 3, 4, 5)


@dataclass
class Day:
    world: World
    records: list[Cdr]
    logouts: Counter[str] = field(default_factory=Counter)
    online_seconds: Counter[str] = field(default_factory=Counter)
    worst_overload: int = 0  # most calls in progress beyond the agents logged in (never > 0)
    logged_in_at: dict[int, int] = field(default_factory=dict)  # hour -> agents logged in at its half


def rota(agents: int, salt: str = "s", floor: float = 0.0) -> tuple[list[str], Rota]:
    people = build_roster(agents, random.Random(f"roster-{salt}"))
    workers = [p.ext for p in people if p.group >= 0]
    return workers, Rota(workers, salt=salt, local=LOCAL, floor=floor)


def live_day(agents: int = 20, *, seed: int = 1, floor: float = 0.0, rate: float | None = None) -> Day:
    people = build_roster(agents, random.Random(f"roster-{seed}"))
    staff = Rota([p.ext for p in people if p.group >= 0], salt=str(seed), local=LOCAL, floor=floor)
    world = World(people, rng=random.Random(seed), local=LOCAL, domain="d", domain_id="x", now=MIDNIGHT,
                  cdrs=CdrStore())  # fmt: skip
    Traffic(world, rota=staff, profile="day", floor=floor).set_rate(
        draws.default_rate(agents, "day") if rate is None else rate)
    result = Day(world, [])
    step = 10.0
    online = {ext: a.logged_in for ext, a in world.agents.items()}
    for k in range(1, int(DAY / step) + 1):
        world.advance(MIDNIGHT + k * step)
        world.take_hooks()
        logged_in = [a for a in world.agents.values() if a.logged_in and a.person.group >= 0]
        result.worst_overload = max(result.worst_overload, len(world.flows) - len(logged_in))
        assert all(world.agents[leg.ext].logged_in for leg in world.legs.values())
        for ext, agent in world.agents.items():
            if online[ext] and not agent.logged_in:
                result.logouts[ext] += 1
            online[ext] = agent.logged_in
            result.online_seconds[ext] += int(step) if agent.logged_in else 0
        if k * step % 3600 == 1800:
            result.logged_in_at[int(k * step // 3600)] = len(logged_in)
    result.records = world.cdrs.between(MIDNIGHT, MIDNIGHT + DAY)
    return result


def by_hour(records: list[Cdr]) -> list[int]:
    hours = Counter(int((c.started - MIDNIGHT) // 3600) for c in records)
    return [hours[h] for h in range(24)]


def assert_looks_like_a_day(hourly: list[int]) -> None:
    def mean(hours: tuple[int, ...]) -> float:
        return sum(hourly[h] for h in hours) / len(hours)

    assert mean(MORNING_PEAK) > 1.7 * mean(LUNCH), hourly
    assert mean(AFTERNOON_PEAK) > 1.5 * mean(LUNCH), hourly
    assert mean(LUNCH) > 4 * mean(NIGHT), hourly
    assert sum(hourly[h] for h in NIGHT) < 0.02 * sum(hourly), hourly


def test_the_curve_opens_peaks_dips_at_lunch_and_is_quiet_at_night() -> None:
    assert day.level(10.0) == 1.0 and day.level(15.0) == 0.9
    assert day.level(12.5) < 0.5 < day.level(9.0)
    assert day.level(3.0) < 0.05 and day.level(23.5) < 0.05
    assert day.level(3.0, floor=0.1) == 0.1 and day.level(10.0, floor=0.1) == 1.0
    assert day.level(24.0 + 10.0) == day.level(10.0)
    assert day.carry(0) == 0 and day.carry(20) == 2 * day.carry(10) > 0


def test_a_simulated_day_has_the_shape_of_a_day_and_sane_figures_per_agent() -> None:
    lived = live_day()
    hourly = by_hour(lived.records)
    assert_looks_like_a_day(hourly)
    # 20 agents: a few thousand calls, not the 700 an hour of the flat demo.
    assert 1_500 < len(lived.records) < 4_000, len(lived.records)
    calls = Counter(c.extension for c in lived.records if c.extension)
    talk = Counter[str]()
    for c in lived.records:
        if c.answered is not None:
            talk[c.extension] += round(c.ended - c.answered)
    assert "999" not in calls and max(calls.values()) < 250
    assert max(talk.values()) < 5 * 3600  # talk time fits in a shift, breaks and ringing left out
    # Callers who find every phone busy are few: traffic stays within what agents carry.
    nobody = sum(1 for c in lived.records if c.extension == "")
    assert nobody < 0.06 * len(lived.records), nobody


def test_calls_in_progress_never_exceed_the_agents_logged_in() -> None:
    for agents, seed in ((20, 2), (6, 3)):
        lived = live_day(agents, seed=seed, floor=0.1, rate=3 * draws.default_rate(agents, "day"))
        assert lived.worst_overload <= 0
        assert lived.records  # (three times the default peak: the agents' hands are the limit)


def test_agents_work_shifts_with_breaks_and_log_out() -> None:
    lived = live_day()
    workers = [ext for ext in lived.world.agents if ext != "999"]
    assert all(lived.logouts[ext] >= 2 for ext in workers), lived.logouts  # breaks and the shift's end
    assert sum(lived.logouts.values()) >= 3 * len(workers)
    assert lived.logouts["999"] == 0 and lived.world.agents["999"].logged_in
    hours_on = [lived.online_seconds[ext] / 3600 for ext in workers]
    assert all(6.5 < h < 10.5 for h in hours_on), hours_on
    on = lived.logged_in_at
    assert max(on[h] for h in NIGHT) <= 3 < min(on[h] for h in (*MORNING_PEAK, *AFTERNOON_PEAK))
    assert on[15] >= 12  # the afternoon, when the shifts overlap (some at a break)


def test_the_backlog_follows_the_same_day_as_the_live_traffic() -> None:
    people = build_roster(20, random.Random("roster-1"))
    _, staff = rota(20, salt="1")
    backlog = list(prefill_day(random.Random(4), rate=draws.default_rate(20, "day"), floor=0.0, rota=staff,
                               start=MIDNIGHT, end=MIDNIGHT + DAY, people=people, fmt=LOCAL.format))  # fmt: skip
    before, live = by_hour(backlog), by_hour(live_day().records)
    assert_looks_like_a_day(before)
    for hour in (*MORNING_PEAK, *LUNCH, *AFTERNOON_PEAK):
        assert 0.6 < before[hour] / live[hour] < 1.6, (hour, before, live)
    # Each agent on shift and one call at a time, in the backlog too.
    for ext, records in _by_agent(backlog).items():
        assert all(staff.on(ext, c.started) for c in records)
        assert all(a.ended <= b.started for a, b in itertools.pairwise(records))


def test_rate_scales_the_peak() -> None:
    people = build_roster(40, random.Random("roster-5"))
    _, staff = rota(40, salt="5")

    def peak(rate: float) -> int:
        backlog = prefill_day(random.Random(6), rate=rate, floor=0.0, rota=staff, start=MIDNIGHT,
                              end=MIDNIGHT + DAY, people=people, fmt=LOCAL.format)  # fmt: skip
        hourly = by_hour(list(backlog))
        return sum(hourly[h] for h in (*MORNING_PEAK, *AFTERNOON_PEAK))

    low, high = peak(3.0), peak(6.0)
    assert 1.7 < high / low < 2.3, (low, high)


def test_a_day_is_the_same_for_the_same_seed_and_not_for_another() -> None:
    first, again, other = rota(20, salt="7")[1], rota(20, salt="7")[1], rota(20, salt="8")[1]
    assert [first.plan(e, MIDNIGHT) for e in first.shift_of] == [again.plan(e, MIDNIGHT) for e in again.shift_of]
    assert [first.plan(e, MIDNIGHT) for e in first.shift_of] != [other.plan(e, MIDNIGHT) for e in other.shift_of]
    assert live_day(seed=9).records == live_day(seed=9).records
    shifts = Counter(s.name for s in first.shift_of.values())
    assert shifts == {"early": 8, "mid": 6, "late": 4, "night": 2}


def test_the_floor_keeps_some_calls_and_some_agents_at_night() -> None:
    quiet, floored = live_day(floor=0.0), live_day(floor=0.1)
    at_night = [sum(by_hour(d.records)[h] for h in NIGHT) for d in (quiet, floored)]
    assert at_night[0] < at_night[1] and at_night[1] >= 6 * 10  # ~ 10 % of the peak: ~ a call every 2 min
    _, small = rota(6, floor=0.1)  # one agent on the night shift, off for a break now and then
    night = small.staffed(MIDNIGHT, MIDNIGHT + 6 * 3600, day.SLOT_SECONDS)
    assert sum(1 for on in night if on) > 0.8 * len(night)


async def test_traffic_profile_through_the_control_api() -> None:
    async with running_sim(agents=20, speed=1.0) as sim:
        assert await sim.control("traffic", {"rate": 5, "profile": "day"}) == {"rate": 5.0, "profile": "day"}
        now = (await sim.client.get("/_sim/traffic")).json()
        assert now["profile"] == "day" and now["floor"] == 0.1 and now["rate"] == 5.0
        assert 0 < now["calls_per_minute"] <= 5.0 and now["logged_in"] >= 1  # at any hour (the floor)
        bad = await sim.client.post("/_sim/traffic", json={"rate": 5, "profile": "weekly"})
        assert bad.status_code == 400
        assert await sim.control("traffic", {"rate": 0, "profile": "flat"}) == {"rate": 0.0, "profile": "flat"}


def _by_agent(records: list[Cdr]) -> dict[str, list[Cdr]]:
    agents: dict[str, list[Cdr]] = {}
    for record in sorted(records, key=lambda c: c.started):
        if record.extension:
            agents.setdefault(record.extension, []).append(record)
    return agents
