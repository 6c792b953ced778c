"""The rules the server and the screens share, in one test: static/js/rules.js, run in
node (tests/js/rules.mjs), against the Python values it mirrors. A rule changed on one
side only fails here; a rule added to rules.js must be added here too."""

from __future__ import annotations

from typing import Any

from tests.factories import T0, agent, live
from tests.jsnode import run_node
from wallboard import apply, patches, state
from wallboard.web.actions import CALL_ACTIONS

# A call of each shape `follows` tells apart: ringing or answered, in or out.
CALLS = [
    {"call_id": "c1", "state": "ringing", "direction": "inbound", "from": "0899123456", "to": "1001",
     "agent": "1001", "started_at": T0, "answered_at": None, "hotline": "19001919"},
    {"call_id": "c2", "state": "answered", "direction": "inbound", "from": "0899123456", "to": "1002",
     "agent": "1002", "started_at": T0, "answered_at": T0 + 7000, "hotline": None},
    {"call_id": "c3", "state": "ringing", "direction": "outbound", "from": "1003", "to": "0912345678",
     "agent": "1003", "started_at": T0 + 1000, "answered_at": None, "hotline": None},
    {"call_id": "c4", "state": "answered", "direction": "outbound", "from": "1004", "to": "0912345678",
     "agent": "1004", "started_at": T0 + 1000, "answered_at": T0 + 4000, "hotline": None},
]


def server_states() -> tuple[set[str], set[str], dict[str, Any]]:
    """The agent and call states a LiveState gives, all of them, and its snapshot."""
    s = live()
    s.apply_agents([agent("1001"), agent("1002", "ringing", "c2", direction="inbound", peer="0899"),
                    agent("1003", "oncall", "c3", direction="outbound", peer="0912"), agent("1004")], T0)
    s.apply_agents([agent("1001"), agent("1002", "ringing", "c2", direction="inbound", peer="0899"),
                    agent("1003", "oncall", "c3", direction="outbound", peer="0912")], T0 + 2000)
    snapshot = s.snapshot(T0 + 2000)
    return {a["state"] for a in s.agents.values()}, {c["state"] for c in s.calls.values()}, snapshot


def test_the_screens_rules_are_the_servers() -> None:
    [js] = run_node("rules.mjs", CALLS)
    rules = js["values"]
    agent_states, call_states, snapshot = server_states()
    top_keys = [k for k in snapshot if k not in ("epoch", "seq", "now", "agents", "calls")]

    assert rules["KEY_FIELD"] == patches.KEY_FIELD
    assert sorted(rules["TOP_KEYS"]) == sorted(top_keys) == sorted(apply.TOP_KEYS)
    assert rules["BOARD_KEYS"] == list(state.BOARD_KEYS) == list(apply.BOARD_KEYS)
    assert all(snapshot[k] == {} for k in state.BOARD_KEYS), "the board's own values start empty"
    assert js["follows"] == [patches.follows(c) for c in CALLS]
    assert all(set(f) == patches.FOLLOW_FIELDS for f in js["follows"])
    assert rules["IDLE"] == patches.IDLE
    assert rules["MONITOR_SLACK_MS"] == state.MONITOR_SLACK_MS
    # The sources whose age screens show: the PBX reads (the webhooks' counters are not one).
    assert rules["SOURCES"] == [k for k in snapshot["sources"] if k != "webhooks"]
    assert set(rules["AGENT_STATES"]) == agent_states == {"offline", "idle", "ringing", "oncall"}
    assert set(rules["CALL_STATES"]) == call_states
    assert set(rules["CALL_ACTIONS"]) == CALL_ACTIONS
    checked = {"KEY_FIELD", "TOP_KEYS", "BOARD_KEYS", "IDLE", "MONITOR_SLACK_MS", "SOURCES", "AGENT_STATES",
               "CALL_STATES", "CALL_ACTIONS"}
    assert set(rules) == checked and js["functions"] == ["follows"], "a rule this test does not check"
