from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import T0, agent, call, event, live, status
from wallboard.patches import Patch


def test_event_path_ringing_answered_hangup() -> None:
    s = live()
    s.apply_agents([agent("1001")], T0)
    ops = s.apply_event(event("ringing", "c1", at=T0 + 1000))
    assert ["put", "agents", "1001", s.agents["1001"]] in ops
    assert s.agents["1001"]["state"] == "ringing" and s.agents["1001"]["since"] == T0 + 1000
    assert s.calls["c1"]["state"] == "ringing" and s.calls["c1"]["agent"] == "1001"
    s.apply_event(event("answered", "c1", at=T0 + 5000))
    assert s.agents["1001"]["state"] == "oncall" and s.agents["1001"]["since"] == T0 + 5000
    assert s.calls["c1"]["answered_at"] == T0 + 5000
    ops = s.apply_event(event("hangup", "c1", at=T0 + 9000))
    assert ["del", "calls", "c1"] in ops
    assert s.agents["1001"]["state"] == "idle" and s.agents["1001"]["call_id"] is None
    assert "c1" not in s.calls


def test_late_and_duplicate_events_change_nothing() -> None:
    s = live()
    for state in ("ringing", "answered", "hangup"):
        s.apply_event(event(state, "c1"))
    def board() -> bytes:
        return orjson.dumps({k: v for k, v in s.snapshot(T0).items() if k != "sources"})

    before = board()
    assert s.apply_event(event("answered", "c1")) == []
    assert s.apply_event(event("ringing", "c1")) == []
    assert s.apply_event(event("hangup", "c1")) == []
    assert board() == before
    assert "c1" not in s.calls


def test_poll_older_than_event_does_not_undo_it_but_newer_poll_wins() -> None:
    s = live()
    s.apply_agents([agent("1001")], T0)
    s.apply_event(event("ringing", "c1", received=T0 + 2000, at=T0 + 2000))
    s.apply_agents([agent("1001")], T0 + 1000)  # sent before the event arrived
    assert s.agents["1001"]["state"] == "ringing"
    s.apply_agents([agent("1001")], T0 + 3000)  # sent after: the PBX says idle, so the call was lost
    assert s.agents["1001"]["state"] == "idle"
    s.apply_calls([], T0 + 3000)
    assert s.calls == {}


def test_poll_never_brings_back_a_hung_up_call() -> None:
    s = live()
    s.apply_event(event("ringing", "c1", received=T0))
    s.apply_event(event("hangup", "c1", received=T0 + 100))
    s.apply_agents([agent("1001", "oncall", "c1", direction="inbound", peer="0899")], T0 + 50)
    s.apply_calls([call("c1", state="CS_EXCHANGE_MEDIA")], T0 + 50)
    assert s.agents["1001"]["state"] == "idle"
    assert "c1" not in s.calls


def test_agent_gone_from_poll_is_offline_and_unchanged_poll_costs_nothing() -> None:
    s = live()
    s.apply_agents([agent("1001"), agent("1002")], T0)
    assert s.apply_agents([agent("1001"), agent("1002")], T0 + 1000) == []
    ops = s.apply_agents([agent("1001")], T0 + 2000)
    assert s.agents["1002"]["state"] == "offline" and len(ops) == 1


def test_since_survives_polls_and_call_time_is_used() -> None:
    s = live()
    s.apply_agents([agent("1001", "oncall", "c9", direction="outbound", peer="0899111222",
                          call_time="2025-11-28 06:59:30")], T0)
    assert s.agents["1001"]["since"] == T0 - 30_000  # PBX local time, UTC+7
    s.apply_agents([agent("1001", "oncall", "c9", direction="outbound", peer="0899111222",
                          call_time="2025-11-28 06:59:30")], T0 + 5000)
    assert s.agents["1001"]["since"] == T0 - 30_000
    assert s.calls["c9"]["state"] == "answered"


def test_ring_group_legs_are_one_waiting_caller_until_one_answers() -> None:
    s = live()
    s.apply_agents([agent("1001"), agent("1002")], T0)
    s.apply_event(event("ringing", "leg1", ext="1001", at=T0 + 10))
    s.apply_event(event("ringing", "leg2", ext="1002", at=T0 + 20))
    st_ = s.snapshot(T0)["stats"]
    assert st_["waiting"] == 1 and st_["longest_wait_since"] == T0 + 10
    s.apply_event(event("answered", "leg2", ext="1002", at=T0 + 5000))
    assert s.snapshot(T0)["stats"]["waiting"] == 0
    s.apply_event(event("hangup", "leg1", ext="1001", at=T0 + 5000))
    assert s.agents["1001"]["state"] == "idle" and s.agents["1002"]["state"] == "oncall"


def test_cdr_event_counts_service_level_once() -> None:
    s = live()
    cdr = event("cdr", "flow-1", status="ANSWERED", time_started=T0, time_answered=T0 + 5000,
                time_ended=T0 + 65_000)
    s.apply_event(cdr)
    s.apply_event(cdr)
    stats = s.snapshot(T0)["stats"]
    assert stats["inbound_total"] == 1 and stats["service_level"] == 100.0
    assert stats["avg_talk_seconds"] == 60.0


def test_day_rolls_over_at_local_midnight() -> None:
    s = live()
    s.apply_agents([agent("1001"), agent("1002")], T0)
    s.apply_status(status(answered=5), T0)
    s.apply_agents([agent("1001")], T0 + 1000)  # 1002 offline
    midnight = s.time.day_start_ms(T0) + 24 * 3600 * 1000
    ops = s.apply_agents([agent("1001")], midnight + 1)
    assert "1002" not in s.agents and ["del", "agents", "1002"] in ops
    assert s.status["total"] == 0 and s.status["since"] == midnight


def test_one_agent_patch_is_small_whatever_the_number_of_agents() -> None:
    s = live()
    s.apply_agents([agent(str(1000 + i)) for i in range(2000)], T0)
    ops = s.apply_event(event("ringing", "c1", ext="1500"))
    seq = s.commit(ops)
    assert seq is not None
    size = len(Patch(seq, s.epoch, T0, ops).encoded(masked=True))
    assert size < 1200, size


# ---- a model of the rules, against generated event orders ------------------------

PHASE = {"ringing": 1, "answered": 2, "hangup": 3}
events_st = st.lists(
    st.tuples(st.sampled_from(["c1", "c2", "c3"]), st.sampled_from(list(PHASE))), max_size=30)


@settings(max_examples=300, deadline=None)
@given(events_st)
def test_merge_matches_model_for_any_order_duplicates_and_losses(seq: list[tuple[str, str]]) -> None:
    exts = {"c1": "1001", "c2": "1002", "c3": "1003"}
    s = live()
    s.apply_agents([agent(e) for e in exts.values()], T0 - 1)
    model: dict[str, int] = {}
    for i, (cid, state) in enumerate(seq):
        s.apply_event(event(state, cid, ext=exts[cid], at=T0 + i, received=T0 + i))
        model[cid] = max(model.get(cid, 0), PHASE[state])
    live_calls = {c for c, p in model.items() if p < 3}
    assert set(s.calls) == live_calls
    for cid, phase in model.items():
        a = s.agents[exts[cid]]
        expected = {1: "ringing", 2: "oncall", 3: "idle"}[phase]
        assert a["state"] == expected
        if phase < 3:
            assert s.calls[cid]["state"] == ("answered" if phase == 2 else "ringing")
