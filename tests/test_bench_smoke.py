"""The benchmark harness works end to end on a tiny scale (the benchmark itself is `make bench`)."""

from __future__ import annotations

import math

from bench import micro, tenants
from bench.phases import run_phase
from bench.run import line, ratios
from bench.servers import servers


def test_merge_figures_see_that_an_unchanged_poll_publishes_nothing() -> None:
    figures = micro.merge_figures(m=200, changed=10, repeats=2)
    assert figures["unchanged_ops"] == 0
    assert figures["unchanged_publishes"] is False
    assert figures["changed_ms"] > 0


def test_the_simulator_figure_times_a_fresh_answer() -> None:
    figures = micro.sim_monitor_figures(m=50, repeats=2)
    assert figures["monitor_ms"] > 0 and figures["bytes"] > 1000


def test_push_and_poll_phases_measure_every_event_on_every_screen() -> None:
    with servers(30) as srv:
        # settle: the screens keep counting this long after the last event (a loaded CI box)
        push = run_phase(srv, "push /ws", "screen", 3, agents=30, first_id=1, rate=20, seconds=1,
                         settle=2.0)
        poll = run_phase(srv, "poll 1 s", "poll", 3, agents=30, first_id=1000, rate=20, seconds=1,
                         interval=0.5, settle=1.0)
    assert push.errors == [] and poll.errors == []
    assert push.events == 20 and push.accepted == 20
    assert push.seen == 1.0  # each of 3 screens got each of 20 events
    assert len(push.latencies_ms) == 60 and 0 < push.pct(0.5) < 1000
    assert push.bytes_per_screen > 0 and push.events_per_screen >= 20
    assert poll.seen > 0.9 and not math.isnan(poll.pct(0.5))
    assert poll.bytes_per_screen > push.bytes_per_screen  # the whole state, again and again
    assert "push /ws" in line(push)
    assert any("poll 1 s" in row for row in ratios([push, poll]))


def test_a_one_team_screen_is_sent_fewer_bytes_and_wakes_less_than_the_whole_board() -> None:
    from bench.teams import report, team_phase

    figures = team_phase(agents=40, teams=4, screens=2, rate=20, seconds=2)
    whole, team = figures["whole board"], figures["one team (T1)"]
    assert 0 < team["bytes_per_s"] < whole["bytes_per_s"] / 2
    assert team["wakeups_per_s"] < whole["wakeups_per_s"]
    assert any("one team / whole board" in row for row in report(figures))


def test_the_tenants_phase_reads_every_tenant_and_no_screen_sees_another_tenant() -> None:
    plan = tenants.Plan(tenants=3, agents=5, screens=6, rate=1.0, idle_seconds=2.0, seconds=2.0, settle=1.0,
                        baseline=False, ready_timeout=30.0)
    out = tenants.run(plan)
    (idle,), (load,) = out["idle"], out["load"]
    assert idle["ready"] == 3 and set(idle["requests"]) == {"t1", "t2", "t3"}
    assert load["errors"] == [] and load["calls"] == 3 and load["accepted"] == 3
    assert load["foreign"] == 0  # a screen of t1 never shows a call of t2
    assert load["seen"] == 1.0 and not math.isnan(load["p50"])  # each of 2 screens per tenant saw its call
    assert out["provider_refresh_ms"] > 0
