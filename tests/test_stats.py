from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import T0, clock, event
from wallboard.pbx.models import Cdr
from wallboard.stats import DayStats, WaitingCallers, waiting_of

HOUR = 3_600_000


def cdr(id_: str, started: int, answered: int | None, ended: int, *, direction: str = "inbound",
        extension: str = "1001") -> Cdr:
    fmt = clock().format
    return Cdr(id=id_, sip_call_id="", cause="", duration=0, direction=direction, recording_url="",
               extension=extension, from_number="0899123456", to_number="19001919", receive_dest="",
               time_started=fmt(started), time_answered=fmt(answered) if answered is not None else "",
               time_ended=fmt(ended), status="ANSWERED" if answered is not None else "NO ANSWER")


def recomputed(stats: DayStats) -> dict[str, Any]:
    """The flow figures by a pass over every flow of the day."""
    per_hour, answered_per_hour = [0] * 24, [0] * 24
    inbound = in_sla = answered = talk_total = talk_count = 0
    for f in stats.flows.values():
        hour = min(23, max(0, (f.started - stats.day_start) // HOUR))
        per_hour[hour] += 1
        if f.answered is not None:
            answered += 1
            answered_per_hour[hour] += 1
            if f.ended is not None and f.ended >= f.answered:
                talk_total += f.ended - f.answered
                talk_count += 1
        if f.inbound:
            inbound += 1
            in_sla += f.answered is not None and f.answered - f.started <= stats.sla_ms
    total = len(stats.flows)
    return {
        "sla_seconds": stats.sla_seconds,
        "service_level": round(100 * in_sla / inbound, 1) if inbound else None,
        "inbound_total": inbound, "inbound_in_sla": in_sla,
        "answer_rate": round(100 * answered / total, 1) if total else None,
        "avg_talk_seconds": round(talk_total / talk_count / 1000, 1) if talk_count else None,
        "calls_per_hour": per_hour, "answered_per_hour": answered_per_hour,
    }


def test_figures_and_waiting_callers() -> None:
    stats = DayStats(clock(), sla_seconds=20, now_ms=T0)
    assert stats.add_cdrs([cdr("a", T0, T0 + 5_000, T0 + 65_000), cdr("b ", T0 + HOUR, None, T0 + HOUR + 9_000)])
    assert not stats.add_cdrs([cdr("b", T0 + HOUR, None, T0 + HOUR + 9_000)])  # the same id, trailing space
    calls = {"c1": {"call_id": "c1", "direction": "inbound", "from": "x", "state": "ringing", "started_at": T0},
             "c2": {"call_id": "c2", "direction": "inbound", "from": "x", "state": "ringing", "started_at": T0 - 9},
             "c3": {"call_id": "c3", "direction": "outbound", "from": "101", "state": "ringing", "started_at": 1}}
    figures = stats.to_json(waiting_of(calls))
    assert figures["service_level"] == 50.0 and figures["answer_rate"] == 50.0
    assert figures["avg_talk_seconds"] == 60.0
    assert figures["calls_per_hour"][7:9] == [1, 1] and sum(figures["answered_per_hour"]) == 1
    assert figures["waiting"] == 1 and figures["longest_wait_since"] == T0 - 9


def test_figures_already_handed_out_do_not_change_with_later_cdrs() -> None:
    stats = DayStats(clock(), sla_seconds=20, now_ms=T0)
    stats.add_cdrs([cdr("a", T0, T0 + 5_000, T0 + 65_000)])
    before = stats.to_json((0, None))
    stats.add_cdrs([cdr("b", T0, T0 + 5_000, T0 + 65_000)])
    after = stats.to_json((0, None))
    assert before["calls_per_hour"][7] == 1 and after["calls_per_hour"][7] == 2


FLOWS = st.lists(st.tuples(
    st.sampled_from(["cdrs", "event", "new_day"]),
    st.integers(-2 * HOUR, 30 * HOUR),  # started, from T0
    st.one_of(st.none(), st.integers(-5_000, 60_000)),  # answered after started
    st.integers(-10_000, 600_000),  # ended after answered (or started)
    st.sampled_from(["inbound", "outbound"]),
    st.integers(0, 20),  # id
    st.sampled_from(["1001", "1002", ""]),  # the extension on the CDR
), max_size=40)


def agents_recomputed(stats: DayStats) -> dict[str, dict[str, int]]:
    """Per agent, by a pass over every flow of the day: calls answered and seconds talked."""
    calls: dict[str, int] = {}
    talk: dict[str, int] = {}
    for f in stats.flows.values():
        if f.agent and f.answered is not None:
            calls[f.agent] = calls.get(f.agent, 0) + 1
            talk[f.agent] = talk.get(f.agent, 0) + (f.ended - f.answered if f.ended is not None
                                                    and f.ended >= f.answered else 0)
    return {ext: {"answered_today": calls.get(ext, 0), "talk_today": round(talk.get(ext, 0) / 1000)}
            for ext in ("1001", "1002", "")}


@settings(max_examples=200, deadline=None)
@given(FLOWS)
def test_figures_counted_as_flows_come_equal_a_pass_over_the_day(steps: list[Any]) -> None:
    stats = DayStats(clock(), sla_seconds=20, now_ms=T0)
    now = T0
    shown: dict[str, dict[str, int]] = {}  # what a board learns through take_changed_agents
    for what, started, answer_after, end_after, direction, n, ext in steps:
        started += T0
        answered = None if answer_after is None else started + answer_after
        ended = (answered or started) + end_after
        if what == "new_day":
            now += 24 * HOUR
            stats.new_day(now)
        elif what == "cdrs":
            stats.add_cdrs([cdr(f"f{n}", started, answered, ended, direction=direction, extension=ext)])
        else:
            stats.add_cdr_event(event("cdr", f"f{n}", direction=direction, extension=ext,
                                      status="ANSWERED" if answered is not None else "NO ANSWER",
                                      time_started=started, time_answered=answered, time_ended=ended))
        figures = stats.to_json((0, None))
        assert {k: v for k, v in figures.items() if k not in ("waiting", "longest_wait_since")} == recomputed(stats)
        for ext in stats.take_changed_agents():
            shown[ext] = stats.agent_today(ext)
        zero = {"answered_today": 0, "talk_today": 0}
        assert {ext: shown.get(ext, zero) for ext in ("1001", "1002", "")} == agents_recomputed(stats)


LEG_CHANGES = st.lists(st.tuples(
    st.sampled_from(["put", "put", "answer", "remove"]),
    st.integers(0, 7),  # call id
    st.sampled_from(["f1", "f2", "f3", None]),  # caller number (None: withheld, a call of its own)
    st.sampled_from(["inbound", "inbound", "outbound"]),
    st.integers(0, 50),  # started
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(LEG_CHANGES)
def test_waiting_callers_kept_as_calls_change_equal_one_pass_over_the_calls(changes: list[Any]) -> None:
    calls: dict[str, dict[str, Any]] = {}
    kept = WaitingCallers()
    for what, n, number, direction, started in changes:
        call_id = f"c{n}"
        if what == "remove":
            calls.pop(call_id, None)
            kept.remove(call_id)
            continue
        old = calls.get(call_id)
        call = dict(old) if old and what == "answer" else {
            "call_id": call_id, "direction": direction, "from": number, "state": "ringing", "started_at": started}
        if what == "answer":
            call["state"] = "answered"
        calls[call_id] = call
        kept.put(call)
        assert kept.figures() == waiting_of(calls)
    assert kept.figures() == waiting_of(calls)
