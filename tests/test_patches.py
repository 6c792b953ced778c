"""The patch format: only changed fields travel, bursts fold into one op per target,
masking reaches partial records too."""

from __future__ import annotations

from wallboard.masking import mask_ops
from wallboard.patches import compact, object_op, record_op


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
    assert mask_ops(ops) == [["upd", "agents", "101", {"peer": "0899***456"}],
                             ["upd", "agents", "102", {"state": "idle"}],
                             ["upd", "calls", "c1", {"from": "0899***456"}]]
