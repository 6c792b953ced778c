"""The patch format: only changed fields travel, bursts fold into one op per target,
masking reaches partial records too."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.factories import T0, agent, event
from wallboard.app import Wallboard
from wallboard.masking import screen_ops
from wallboard.patches import Patch, compact, object_op, record_op


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
    assert screen_ops(ops, masked=True) == [["upd", "agents", "101", {"peer": "0899***456"}],
                             ["upd", "agents", "102", {"state": "idle"}],
                             ["upd", "calls", "c1", {"from": "0899***456"}]]


def test_no_screen_sees_the_flow_key_it_holds_the_callers_number() -> None:
    call = {"call_id": "c1", "from": "0899123456", "to": "101", "flow": "19001234|0899123456"}
    for masked in (True, False):
        (op,) = screen_ops([["put", "calls", "c1", call]], masked)
        assert "flow" not in op[3] and "0899123456" not in str(op) if masked else "flow" not in op[3]
    assert call["flow"]  # the state keeps it


def test_a_kiosk_snapshot_and_patch_hold_no_whole_caller_number(tmp_path: Path) -> None:
    from tests.test_hub import make_app

    wb: Wallboard = make_app(tmp_path, 8000).state.wallboard
    wb.publish(wb.live.apply_agents([agent("1001"), agent("1002")], T0))
    ops = []
    for leg, ext in (("leg-1", "1001"), ("leg-2", "1002")):  # a ring group: two legs, one flow
        ops += wb.live.apply_event(event("ringing", leg, ext=ext, number="0899123456", at=T0 + 1000))
    assert wb.live.calls["leg-1"]["flow"] == wb.live.calls["leg-2"]["flow"]
    patch = Patch(1, T0, compact(ops))
    assert b"0899123456" not in orjson.dumps(wb.snapshot(True)) and b"0899123456" not in patch.json(True)
    assert b'"flow"' not in orjson.dumps(wb.snapshot(False)) and b'"flow"' not in patch.json(False)
