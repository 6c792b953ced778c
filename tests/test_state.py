from __future__ import annotations

import functools
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.factories import T0, agent, audience, call, event, live, patch_json, status
from tests.screen import ScreenCopy, comparable
from wallboard.audience import screen_state
from wallboard.patches import snapshot_message
from wallboard.pbx.models import Cdr
from wallboard.state import CallEvent, LiveState


def test_event_path_ringing_answered_hangup() -> None:
    s = live()
    s.apply_agents([agent("1001")], T0)
    ops = s.apply_event(event("ringing", "c1", at=T0 + 1000))
    assert ["upd", "agents", "1001", {"state": "ringing", "since": T0 + 1000, "call_id": "c1",
                                      "direction": "inbound", "peer": s.agents["1001"]["peer"]}] in ops
    assert ["put", "calls", "c1", s.calls["c1"]] in ops
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


def test_cdr_before_the_hangup_ends_a_single_extension_call() -> None:
    s = live()
    s.apply_agents([agent("1001")], T0)
    s.apply_event(event("ringing", "c1", at=T0 + 1000))
    s.apply_event(event("answered", "c1", at=T0 + 2000))
    ops = s.apply_event(event("cdr", "c1", at=T0 + 60_000, status="ANSWERED", time_started=T0 + 1000,
                              time_answered=T0 + 2000, time_ended=T0 + 60_000))
    assert ["del", "calls", "c1"] in ops and "c1" not in s.calls
    assert s.agents["1001"]["state"] == "idle" and s.agents["1001"]["since"] == T0 + 60_000
    assert s.snapshot(T0)["stats"]["inbound_total"] == 1
    assert s.apply_event(event("hangup", "c1", at=T0 + 60_500)) == []  # the late hangup changes nothing
    s.apply_agents([agent("1001", "oncall", "c1", direction="inbound", peer="0899")], T0 + 50_000)
    assert s.agents["1001"]["state"] == "idle" and "c1" not in s.calls  # nor does an older poll


def test_cdr_of_a_ring_group_flow_ends_its_legs_still_on_the_board() -> None:
    s = live()
    s.apply_agents([agent("1001"), agent("1002"), agent("1003")], T0)
    s.apply_event(event("ringing", "leg1", ext="1001", at=T0 + 1000))
    s.apply_event(event("ringing", "leg2", ext="1002", at=T0 + 1000))
    s.apply_event(event("answered", "leg2", ext="1002", at=T0 + 3000))
    s.apply_event(event("hangup", "leg1", ext="1001", at=T0 + 3000))
    s.apply_event(event("ringing", "other", ext="1003", number="0911000111", at=T0 + 4000))
    s.apply_event(event("cdr", "flow-1", ext="1002", at=T0 + 30_000, status="ANSWERED",
                        time_started=T0 + 500, time_answered=T0 + 3000, time_ended=T0 + 30_000))
    assert set(s.calls) == {"other"}  # another caller's call stays
    assert s.agents["1002"]["state"] == "idle" and s.agents["1003"]["state"] == "ringing"
    assert s.apply_event(event("hangup", "leg2", ext="1002", at=T0 + 30_000)) == []


def test_cdr_does_not_end_other_calls_of_the_same_number() -> None:
    """Flow keys repeat (a withheld or shared number): only the CDR's own extension, while
    the flow lasted, is taken."""
    s = live()
    s.apply_agents([agent("1001"), agent("1002")], T0)
    s.apply_event(event("ringing", "leg1", ext="1001", at=T0 + 1000))
    s.apply_event(event("ringing", "at-once", ext="1002", at=T0 + 2000))  # the same number, meanwhile
    s.apply_event(event("answered", "leg1", ext="1001", at=T0 + 3000))
    s.apply_event(event("answered", "at-once", ext="1002", at=T0 + 4000))
    s.apply_event(event("hangup", "leg1", ext="1001", at=T0 + 30_000))
    s.apply_event(event("ringing", "again", ext="1001", at=T0 + 40_000))  # called back at once
    s.apply_event(event("cdr", "flow-1", ext="1001", at=T0 + 41_000, status="ANSWERED",
                        time_started=T0 + 500, time_answered=T0 + 3000, time_ended=T0 + 30_000))  # late
    assert set(s.calls) == {"at-once", "again"}
    assert s.agents["1001"]["state"] == "ringing" and s.agents["1002"]["state"] == "oncall"


def test_an_agents_calls_and_talk_time_today_come_from_cdrs() -> None:
    s = live()
    s.apply_agents([agent("1001"), agent("1002")], T0)
    assert {k: s.agents["1001"][k] for k in ("answered_today", "talk_today")} == {
        "answered_today": 0, "talk_today": 0}
    ops = s.apply_event(event("cdr", "flow-1", extension="1001", status="ANSWERED", time_started=T0,
                              time_answered=T0 + 5000, time_ended=T0 + 65_400, at=T0 + 65_400))
    assert ["upd", "agents", "1001", {"answered_today": 1, "talk_today": 60}] in ops
    fmt = s.time.format
    read = [Cdr(id=i, sip_call_id="", cause="", duration=0, direction=d, recording_url="", extension=x,
                from_number="0899", to_number="1900", receive_dest="", time_started=fmt(T0),
                time_answered=fmt(T0 + 1000) if st == "ANSWERED" else "", time_ended=fmt(T0 + 31_000),
                status=st)
            for i, d, x, st in [("flow-1", "inbound", "1001", "ANSWERED"),  # the same flow again
                                ("flow-2", "outbound", "1001", "ANSWERED"),
                                ("flow-3", "inbound", "1002", "NO ANSWER"),
                                ("flow-4", "inbound", "1003", "ANSWERED")]]
    ops = s.apply_cdrs(read, T0 + 70_000)
    assert ["upd", "agents", "1001", {"answered_today": 2, "talk_today": 90}] in ops
    assert not [op for op in ops if op[1] == "agents" and op[2] != "1001"]  # 1002 missed; 1003 unseen
    s.apply_agents([agent("1001"), agent("1002"), agent("1003")], T0 + 80_000)
    assert (s.agents["1003"]["answered_today"], s.agents["1003"]["talk_today"]) == (1, 30)
    midnight = s.time.day_start_ms(T0) + 24 * 3600 * 1000
    ops = s.apply_agents([agent("1001"), agent("1002"), agent("1003")], midnight + 1)
    assert ["upd", "agents", "1001", {"answered_today": 0, "talk_today": 0}] in ops
    assert all(a["answered_today"] == 0 and a["talk_today"] == 0 for a in s.agents.values())


def test_a_cdr_webhook_without_extension_or_status_is_completed_by_the_cdr_read() -> None:
    """The vendor's webhook fields do not promise `extension` or `status`: the /v1/cdr copy
    of the same flow fills them in, and the flow still counts once."""
    s = live()
    s.apply_agents([agent("1001")], T0)
    s.apply_event(event("cdr", "flow-9", time_started=T0, time_answered=T0 + 5000, time_ended=T0 + 65_000,
                        at=T0 + 65_000))
    assert s.snapshot(T0)["stats"]["answer_rate"] == 0.0 and s.agents["1001"]["answered_today"] == 0
    fmt = s.time.format
    read = Cdr(id="flow-9 ", sip_call_id="", cause="", duration=65, direction="inbound", recording_url="",
               extension="1001", from_number="0899", to_number="1900", receive_dest="", time_started=fmt(T0),
               time_answered=fmt(T0 + 5000), time_ended=fmt(T0 + 65_000), status="ANSWERED")
    ops = s.apply_cdrs([read], T0 + 70_000)
    assert ["upd", "agents", "1001", {"answered_today": 1, "talk_today": 60}] in ops
    stats = s.snapshot(T0)["stats"]
    assert (stats["answer_rate"], stats["inbound_total"], sum(stats["calls_per_hour"])) == (100.0, 1, 1)
    assert s.apply_cdrs([read], T0 + 80_000) == []  # nothing new the third time


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
    patch = s.commit(ops)
    assert patch is not None
    size = len(patch_json(patch, True).decode())
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


# ---- the rules against a model world, with polls interleaved ---------------------------

STEP_MS = 1000
RING_GROUPS = [["1001", "1002"], ["1003"], ["1002", "1004"], ["1004"]]


class ModelPbx:
    """A tiny PBX: flows ringing one or more extensions, answered by one, ended.

    It records the webhooks it would send (with its own time of each) and answers polls
    from its truth. Every flow comes from the same number to the same hotline, as
    withheld numbers do: flow keys say little."""

    def __init__(self) -> None:
        self.legs: dict[str, dict[str, str]] = {}  # call_id -> {"ext", "state", "flow"}
        self.flows: dict[int, list[str]] = {}
        self.began: dict[int, int] = {}
        self.sent: list[tuple[str, str, str, dict[str, Any]]] = []  # (state, call_id, ext, event fields)
        self.made = 0

    def busy(self, ext: str) -> bool:
        return any(leg["ext"] == ext for leg in self.legs.values())

    def ring(self, group: int, now: int) -> None:
        exts = RING_GROUPS[group]
        if any(self.busy(e) for e in exts):
            return
        self.made += 1
        legs = [f"f{self.made}" if len(exts) == 1 else f"f{self.made}-{e}" for e in exts]
        self.flows[self.made] = legs
        self.began[self.made] = now
        for call_id, ext in zip(legs, exts, strict=True):
            self.legs[call_id] = {"ext": ext, "state": "ringing"}
            self.sent.append(("ringing", call_id, ext, {"at": now}))

    def answer(self, pick: int, now: int) -> None:
        ringing = [f for f, legs in self.flows.items() if all(self.legs[c]["state"] == "ringing" for c in legs)]
        if not ringing:
            return
        legs = self.flows[ringing[pick % len(ringing)]]
        winner = legs[pick % len(legs)]
        self.legs[winner]["state"] = "answered"
        self.sent.append(("answered", winner, self.legs[winner]["ext"], {"at": now}))
        for other in legs:
            if other != winner:
                self.sent.append(("hangup", other, self.legs.pop(other)["ext"], {"at": now}))
        legs[:] = [winner]

    def end(self, pick: int, now: int) -> None:
        if not self.flows:
            return
        flow = sorted(self.flows)[pick % len(self.flows)]
        legs = self.flows.pop(flow)
        answered = self.legs[legs[0]]["state"] == "answered"
        ext = self.legs[legs[-1]]["ext"]  # the one who answered, else the last that rang
        for call_id in legs:
            self.sent.append(("hangup", call_id, self.legs.pop(call_id)["ext"], {"at": now}))
        began = self.began.pop(flow)
        self.sent.append(("cdr", f"f{flow}", ext, {
            "at": now, "status": "ANSWERED" if answered else "NO ANSWER", "extension": ext,
            "time_started": began, "time_answered": began if answered else None, "time_ended": now}))

    def agent_rows(self) -> list[Any]:
        by_ext = {leg["ext"]: (c, leg["state"]) for c, leg in self.legs.items()}
        rows = []
        for ext in ("1001", "1002", "1003", "1004"):
            call_id, state = by_ext.get(ext, ("", ""))
            rows.append(agent(ext, {"ringing": "ringing", "answered": "oncall"}.get(state, ""), call_id,
                              direction="inbound" if call_id else "", peer="0899" if call_id else ""))
        return rows

    def call_rows(self) -> list[Any]:
        return [call(c, ext=leg["ext"], state="CS_EXCHANGE_MEDIA" if leg["state"] == "answered" else "CS_ROUTING")
                for c, leg in self.legs.items()]


def poll(apply: Any, rows: list[Any], sent: int, now: int) -> None:
    apply(rows, sent)


class Mirrored:
    """A LiveState whose changes reach two screens (numbers whole and masked) as the
    patches a server would send; after every batch each screen's copy must equal a
    fresh snapshot. This is what lets patches leave out what a screen can tell."""

    def __init__(self, s: LiveState, now: int) -> None:
        self.s = s
        self.pending: list[Any] = []
        self.copies = {masked: ScreenCopy(self._snapshot(masked, now)) for masked in (False, True)}

    def _snapshot(self, masked: bool, now: int) -> dict[str, Any]:
        return orjson.loads(orjson.dumps(
            snapshot_message(self.s.seq, screen_state(self.s.snapshot(now), audience(masked)))))

    def apply_event(self, ev: CallEvent) -> None:
        self.pending += self.s.apply_event(ev)

    def apply_agents(self, rows: list[Any], started: int) -> None:
        self.pending += self.s.apply_agents(rows, started)

    def apply_calls(self, rows: list[Any], started: int) -> None:
        self.pending += self.s.apply_calls(rows, started)

    def settle(self, now: int) -> None:
        patch = self.s.commit(self.pending)
        self.pending = []
        for masked, copy in self.copies.items():
            if patch is not None:
                copy.patch(orjson.loads(patch_json(patch, masked)))
            copy.heard(self.s.last_heard())  # the next ping
            assert copy.state() == comparable(self._snapshot(masked, now)["state"])


ACTIONS = st.lists(st.tuples(st.sampled_from(["ring", "answer", "end", "poll_agents", "poll_calls"]),
                             st.integers(0, 3),
                             st.sampled_from(["now", "now", "drop", "twice", "late", "reversed"]),
                             st.integers(0, 4)), max_size=40)


@settings(max_examples=250, deadline=None)
@given(ACTIONS)
def test_events_and_polls_in_any_order_converge_at_the_next_poll(actions: list[tuple[str, int, str, int]]) -> None:
    """Webhooks dropped, duplicated, late or in reverse order, polls sent before and
    answered after events: at any moment no call whose hangup (or whose own CDR) came
    is on the board, and a poll after the dust settles gives exactly the PBX's truth."""
    pbx, state = ModelPbx(), live()
    state.apply_agents(pbx.agent_rows(), T0)
    s = Mirrored(state, T0)
    pending: list[tuple[int, int, Any]] = []  # (due step, order, thunk)
    ended: set[str] = set()
    order = 0

    def later(due: int, thunk: Any) -> None:
        nonlocal order
        order += 1
        pending.append((due, order, thunk))

    def deliver(state: str, call_id: str, ext: str, fields: dict[str, Any]) -> Any:
        def go(now: int) -> None:
            s.apply_event(event(state, call_id, ext=ext, received=now, **fields))
            if state in ("hangup", "cdr"):
                ended.add(call_id)
        return go

    for step, (what, arg, fate, lag) in enumerate(actions, start=1):
        now = T0 + step * STEP_MS
        before = len(pbx.sent)
        if what == "ring":
            pbx.ring(arg, now)
        elif what == "answer":
            pbx.answer(arg, now)
        elif what == "end":
            pbx.end(arg, now)
        elif what == "poll_agents":  # asked now, answered `lag` steps later
            later(step + lag, functools.partial(poll, s.apply_agents, pbx.agent_rows(), now))
        else:
            later(step + lag, functools.partial(poll, s.apply_calls, pbx.call_rows(), now))
        hooks = pbx.sent[before:]
        for hook in reversed(hooks) if fate == "reversed" else hooks:
            if fate != "drop":
                later(step + (lag if fate == "late" else 0), deliver(*hook))
            if fate == "twice":
                later(step + lag, deliver(*hook))
        for _, _, thunk in sorted(p for p in pending if p[0] <= step):
            thunk(now)
        pending = [p for p in pending if p[0] > step]
        s.settle(now)
        assert not ended & set(state.calls), "a call whose hangup or CDR came is on the board"

    last = T0 + (len(actions) + 10) * STEP_MS
    for _, _, thunk in sorted(pending):
        thunk(last)
        s.settle(last)
        assert not ended & set(state.calls), "a call whose hangup or CDR came is on the board"
    s.apply_agents(pbx.agent_rows(), last + 1)
    s.apply_calls(pbx.call_rows(), last + 1)
    s.settle(last + 1)
    truth_agents = {r.ext: ({"RINGING": "ringing", "ONCALL": "oncall"}.get(r.call_state, "idle"), r.call_id or None)
                    for r in pbx.agent_rows()}
    assert {e: (a["state"], a["call_id"]) for e, a in state.agents.items()} == truth_agents
    assert {c: v["state"] for c, v in state.calls.items()} == {c: leg["state"] for c, leg in pbx.legs.items()}
    on_call: dict[str, set[str]] = {}  # the index of agents by call, against the records
    for ext, a in state.agents.items():
        if a["call_id"] is not None:
            on_call.setdefault(a["call_id"], set()).add(ext)
    assert state._on_call == on_call


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3 * 3600), st.sets(st.sampled_from(["1001", "1002", "1003"]))),
                min_size=1, max_size=12))
def test_day_rollover_forgets_only_agents_offline_since_yesterday(polls: list[tuple[int, set[str]]]) -> None:
    s = live()
    midnight = s.time.day_start_ms(T0) + 24 * 3600 * 1000
    start = midnight - 90 * 60 * 1000  # polls from 22:30 to 01:30 local
    offline_since: dict[str, int] = {}
    online: set[str] = set()
    for offset, exts in sorted(polls):
        at = start + offset * 1000
        s.apply_agents([agent(e) for e in sorted(exts)], at)
        for e in online - exts:
            offline_since[e] = at
        for e in exts:
            offline_since.pop(e, None)
        if s.time.day_start_ms(at) == midnight:
            # forgotten at the first change after midnight: offline since before it
            offline_since = {e: t for e, t in offline_since.items() if t >= midnight or e in s.agents}
        online = exts
        assert {e for e, a in s.agents.items() if a["state"] != "offline"} == exts
        assert {e for e, a in s.agents.items() if a["state"] == "offline"} == set(offline_since)
    if s.time.day_start_ms(start + sorted(polls)[-1][0] * 1000) == midnight:
        assert all(a["since"] >= midnight for a in s.agents.values() if a["state"] == "offline")


def test_a_monitor_ends_when_the_supervisors_phone_leaves_the_call_it_joined() -> None:
    """Listen to 1001's call, then hang up the supervisor's own leg: the agent's call goes
    on, the 'listening' badge must not."""
    s = live()
    s.apply_agents([agent("1001"), agent("999")], T0)
    s.apply_event(event("answered", "c1", ext="1001", at=T0 + 1000))
    assert s.set_monitor("c1", {"agent": "1001", "mode": "listen", "by": "sup", "ext": "999"}, T0 + 5000)
    # The PBX rings 999 (an outbound leg from it) and 999 answers; the monitor stays.
    s.apply_event(event("ringing", "sup-leg", ext="999", direction="outbound", number="1001", at=T0 + 5200))
    s.apply_event(event("answered", "sup-leg", ext="999", direction="outbound", number="1001", at=T0 + 7000))
    assert list(s.monitors) == ["c1"]
    ops = s.apply_event(event("hangup", "sup-leg", ext="999", direction="outbound", number="1001", at=T0 + 30000))
    assert s.monitors == {} and ["set", "monitors", []] in ops
    assert s.agents["1001"]["state"] == "oncall" and "c1" in s.calls


def test_a_monitor_outlives_an_older_call_of_the_supervisors_phone() -> None:
    s = live()
    s.apply_agents([agent("1001"), agent("999")], T0)
    s.apply_event(event("answered", "c1", ext="1001", at=T0 + 1000))
    s.apply_event(event("answered", "own", ext="999", at=T0 + 2000))  # 999 on a call of its own
    s.set_monitor("c1", {"agent": "1001", "mode": "listen", "by": "sup", "ext": "999"}, T0 + 60_000)
    s.apply_event(event("hangup", "own", ext="999", at=T0 + 61_000))
    assert list(s.monitors) == ["c1"]


def test_a_ring_group_seen_first_by_a_poll_is_one_waiting_caller() -> None:
    """The poll does not tell the hotline; the legs still belong to one caller, and the
    webhook that comes later puts the leg in its flow."""
    s = live()
    s.apply_agents([agent("1001"), agent("1002")], T0)
    s.apply_calls([call("leg-1", ext="1001", number="0913674749"),
                   call("leg-2", ext="1002", number="0913674749")], T0 + 1000)
    assert s.stats.to_json(s.waiting.figures())["waiting"] == 1
    s.apply_event(event("ringing", "leg-1", ext="1001", number="0913674749", hotline="19001919", at=T0 + 900))
    assert s.calls["leg-1"]["hotline"] == "19001919" and s.calls["leg-1"]["flow"] == "19001919|0913674749"
    assert s.stats.to_json(s.waiting.figures())["waiting"] == 1
