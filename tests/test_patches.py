"""The patch format: only changed fields travel, bursts fold into one op per target,
masking reaches partial records too."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.factories import T0, Running, agent, audience, event, live, patch_json
from tests.screen import ScreenCopy, comparable
from wallboard.audience import Audience, screen_ops, screen_state
from wallboard.bus import Published
from wallboard.patches import Patch, compact, object_op, positional, record_op, snapshot_message


def test_record_op_sends_nothing_the_changed_fields_or_the_whole_record() -> None:
    old = {"ext": "101", "state": "idle", "since": 1, "peer": None}
    assert record_op("agents", "101", old, dict(old)) == []
    assert record_op("agents", "101", old, {**old, "state": "ringing", "peer": "0899123456"}) == [
        ["upd", "agents", "101", {"state": "ringing", "peer": "0899123456"}]]
    assert record_op("agents", "101", None, old) == [["put", "agents", "101", old]]
    fewer = {"ext": "101", "state": "idle", "since": 1}  # a field gone: only a put says so
    assert record_op("agents", "101", old, fewer) == [["put", "agents", "101", fewer]]


def test_object_op_merges_changed_keys() -> None:
    old = {"waiting": 1, "calls_per_hour": [0] * 24}
    assert object_op("stats", old, dict(old)) == []
    assert object_op("stats", old, {**old, "waiting": 2}) == [["merge", "stats", {"waiting": 2}]]
    assert object_op("stats", None, old) == [["set", "stats", old]]


def test_compact_folds_updates_into_one_op_per_target() -> None:
    ops = [["put", "calls", "c1", {"call_id": "c1", "state": "ringing"}],
           ["upd", "agents", "101", {"state": "ringing"}],
           ["upd", "calls", "c1", {"state": "answered"}],
           ["merge", "stats", {"waiting": 1}],
           ["upd", "agents", "101", {"state": "oncall", "since": 5}],
           ["merge", "stats", {"waiting": 0}],
           ["del", "calls", "c2"]]
    assert compact(ops) == [["put", "calls", "c1", {"call_id": "c1", "state": "answered"}],
                            ["upd", "agents", "101", {"state": "oncall", "since": 5}],
                            ["merge", "stats", {"waiting": 0}],
                            ["del", "calls", "c2"]]
    assert compact([["upd", "calls", "c1", {"state": "answered"}], ["del", "calls", "c1"]]) == [
        ["del", "calls", "c1"]]


def test_masking_covers_partial_records() -> None:
    ops = [["upd", "agents", "101", {"peer": "0899123456"}], ["upd", "agents", "102", {"state": "idle"}],
           ["upd", "calls", "c1", {"from": "0899123456"}]]
    assert screen_ops(ops, audience(True)) == [["upd", "agents", "101", {"peer": "0899***456"}],
                             ["upd", "agents", "102", {"state": "idle"}],
                             ["upd", "calls", "c1", {"from": "0899***456"}]]


def test_no_screen_sees_the_flow_key_it_holds_the_callers_number() -> None:
    call = {"call_id": "c1", "from": "0899123456", "to": "101", "flow": "19001234|0899123456"}
    for masked in (True, False):
        (op,) = screen_ops([["put", "calls", "c1", call]], audience(masked))
        assert "flow" not in op[3] and "0899123456" not in str(op) if masked else "flow" not in op[3]
    assert call["flow"]  # the state keeps it


def test_a_kiosk_snapshot_and_patch_hold_no_whole_caller_number(tmp_path: Path) -> None:
    from tests.test_hub import make_app

    wb = Running(make_app(tmp_path, 8000))
    wb.publish(wb.live.apply_agents([agent("1001"), agent("1002")], T0))
    ops = []
    for leg, ext in (("leg-1", "1001"), ("leg-2", "1002")):  # a ring group: two legs, one flow
        ops += wb.live.apply_event(event("ringing", leg, ext=ext, number="0899123456", at=T0 + 1000))
    assert wb.live.calls["leg-1"]["flow"] == wb.live.calls["leg-2"]["flow"]
    patch = Patch(1, compact(ops))
    assert b"0899123456" not in orjson.dumps(wb.snapshot(True)) and b"0899123456" not in patch_json(patch, True)
    assert b'"flow"' not in orjson.dumps(wb.snapshot(False)) and b'"flow"' not in patch_json(patch, False)


def test_an_agent_that_follows_its_call_is_not_sent_apart_and_screens_agree() -> None:
    s = live()
    s.apply_agents([agent(str(1000 + i)) for i in range(2000)], T0)
    copies = {m: ScreenCopy(orjson.loads(orjson.dumps(
        snapshot_message(s.seq, screen_state(s.snapshot(T0), audience(m))))))
              for m in (False, True)}
    sizes = []
    for state, at in (("ringing", T0 + 1000), ("answered", T0 + 4000), ("hangup", T0 + 9000)):
        patch = s.commit(s.apply_event(event(state, "c1", ext="1500", at=at)))
        assert patch is not None
        wire = orjson.loads(patch_json(patch, False))["ops"]
        assert not [op for op in wire if op[1] == "agents"], wire  # carried by the call op
        sizes.append(len(patch_json(patch, True)))
        for masked, copy in copies.items():
            copy.patch(orjson.loads(patch_json(patch, masked)))
            assert copy.state() == comparable(screen_state(s.snapshot(at), audience(masked)))
    assert copies[False].agents["1500"]["state"] == "idle" and copies[True].agents["1500"]["since"] == T0 + 9000
    print(f"\nring, answer, hangup with 2,000 agents: {sizes} bytes")
    assert sizes[0] < 200, sizes  # a new call ringing an agent, with the waiting figures


def test_an_agent_op_stays_when_the_call_does_not_tell_all_of_it() -> None:
    s = live()
    s.apply_agents([agent("1001"), agent("1002")], T0)
    s.commit([])
    # Renamed by the same batch: the name is not in the call.
    ops = s.apply_event(event("ringing", "c1", ext="1001", at=T0 + 1000))
    ops += s.apply_agents([agent("1001", "ringing", "c1", name="Lan"), agent("1002")], T0 + 1500)
    patch = s.commit(ops)
    assert patch is not None
    assert ["put", "calls", "c1"] in [op[:3] for op in patch.wire or []]
    assert [op for op in patch.wire or [] if op[1] == "agents"], "the rename must travel"
    assert all(len(op) == 4 for op in patch.wire or [] if op[1] == "calls")


def test_positional_records_only_for_the_usual_shape() -> None:
    rec = {"call_id": "c1", "agent": "1001", "from": "0899", "to": "1001", "direction": "inbound",
           "state": "ringing", "started_at": 5, "hotline": None, "answered_at": None}
    (op,) = positional([["put", "calls", "c1", rec]])
    assert op == ["put", "calls", "c1", ["1001", "0899", "1001", "inbound", "ringing", 5]]  # trailing nulls gone
    odd = {**rec, "extra": 1}
    assert positional([["put", "calls", "c1", odd]]) == [["put", "calls", "c1", odd]]


def test_a_call_that_rings_and_ends_in_one_batch_leaves_the_agent_op_in() -> None:
    """The call never reached a screen, so its end cannot carry the agent."""
    s = live()
    s.apply_agents([agent("1001")], T0)
    copy = ScreenCopy(orjson.loads(orjson.dumps(
        snapshot_message(s.seq, screen_state(s.snapshot(T0), audience(False))))))
    s.commit([])
    ops = s.apply_event(event("ringing", "c0", ext="1001", at=T0 + 500))
    copy.patch(orjson.loads(patch_json(s.commit(ops), False)))  # type: ignore[union-attr]
    # c1 rings the same agent and hangs up within one turn
    ops = s.apply_event(event("ringing", "c1", ext="1001", at=T0 + 1000))
    ops += s.apply_event(event("hangup", "c1", ext="1001", at=T0 + 2000))
    patch = s.commit(ops)
    assert patch is not None
    copy.patch(orjson.loads(patch_json(patch, False)))
    assert copy.state() == comparable(screen_state(s.snapshot(T0 + 2000), audience(False)))


async def test_a_snapshot_taken_mid_batch_shows_the_batch_and_its_seq(tmp_path: Path) -> None:
    """1001 is on call x while w rings it too; in one turn x ends, a screen connects, a poll
    shows 1001 ringing w, and w ends. The screen must end where the server does."""
    from tests.test_hub import make_app

    wb = Running(make_app(tmp_path, 8000))
    sent: list[Published] = []
    wb.engine.bus.publish_nowait = sent.append  # type: ignore[method-assign]
    wb.publish(wb.live.apply_agents([agent("1001")], T0))
    wb.publish(wb.live.apply_event(event("answered", "x", ext="1001", at=T0 + 500)))
    wb.publish(wb.live.apply_event(event("ringing", "w", ext="1001", at=T0 + 600)))
    wb.flush()
    wb.publish(wb.live.apply_event(event("hangup", "x", ext="1001", at=T0 + 1000)))
    seq, text = wb.snapshot_text(False)  # before the end of this turn
    copy = ScreenCopy(orjson.loads(text))
    assert seq == wb.live.seq == copy.seq and copy.agents["1001"]["since"] == T0 + 1000
    wb.publish(wb.live.apply_agents([agent("1001", "ringing", "w")], T0 + 1500))
    wb.publish(wb.live.apply_event(event("hangup", "w", ext="1001", at=T0 + 2000)))
    wb.flush()
    for patch in sent:
        if patch.seq > copy.seq:
            copy.patch(orjson.loads(patch.payloads[Audience.SUPERVISOR]))
    assert copy.seq == wb.live.seq
    copy.heard(wb.live.last_heard())  # the next ping
    assert copy.state() == comparable(wb.snapshot(False))
