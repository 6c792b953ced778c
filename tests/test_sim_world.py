"""The call center model on its own: determinism, ring groups, flows and their records."""

from __future__ import annotations

import random

from wallboard.sim.cdrs import CdrStore
from wallboard.sim.clock import LocalTime
from wallboard.sim.roster import build_roster
from wallboard.sim.traffic import Traffic
from wallboard.sim.views import truth
from wallboard.sim.world import World

START = 1_764_290_000.0  # a fixed sim time: the model never reads a clock itself


def make_world(seed: int, agents: int = 30, ratio: float = 0.85) -> World:
    return World(
        build_roster(agents, random.Random(seed)),
        rng=random.Random(seed),
        local=LocalTime("Asia/Ho_Chi_Minh"),
        domain="sim.tel4vn.com",
        domain_id="d",
        now=START,
        cdrs=CdrStore(),
        logged_in_ratio=ratio,
    )


def run_day(seed: int) -> tuple[list[dict[str, object]], dict[str, object]]:
    world = make_world(seed)
    Traffic(world).set_rate(30)
    hooks = []
    for step in range(1, 1200):
        world.advance(START + step * 3.0)
        hooks += [h.payload for h in world.take_hooks()]
    return hooks, truth(world)


def test_the_same_seed_makes_the_same_hour() -> None:
    first, second, other = run_day(4), run_day(4), run_day(5)
    assert first == second
    assert first[0] != other[0]
    state = first[1]
    counts = state["counts"]
    assert isinstance(counts, dict) and sum(counts.values()) > 500
    assert all(counts[s] > 0 for s in ("ANSWERED", "BUSY", "NO ANSWER", "FAILED", "UNKNOWN"))


def test_roster_has_vietnamese_names_and_the_supervisor_phone() -> None:
    people = build_roster(50, random.Random(1))
    assert people[0].ext == "999" and people[0].name == "Supervisor"
    assert [p.ext for p in people[1:3]] == ["1001", "1002"]
    assert len({p.name for p in people}) > 30
    assert all(p.username.isascii() and p.username.endswith(p.ext) for p in people[1:])
    assert any("Nguyễn" in p.name or "Trần" in p.name for p in people)


def test_ring_group_legs_have_their_own_ids_and_the_cdr_the_flows() -> None:
    world = make_world(1, ratio=1.0)
    flow = world.start_inbound(exts=["1001", "1002", "1003"], number="0899123456",
                               hotline="19001919", ring_seconds=5, talk_seconds=30,
                               answer_by="1002")  # fmt: skip
    ringing = world.take_hooks()
    assert [h.state for h in ringing] == ["ringing"] * 3
    leg_ids = {h.payload["call_id"] for h in ringing}
    assert len(leg_ids) == 3 and flow.flow_id not in leg_ids
    assert {h.payload["to_number"] for h in ringing} == {"1001", "1002", "1003"}
    world.advance(START + 5)
    moved = world.take_hooks()
    assert [h.state for h in moved] == ["answered", "hangup", "hangup"]
    assert moved[0].payload["to_number"] == "1002"
    assert {h.payload["billsec"] for h in moved[1:]} == {0}
    world.advance(START + 35)
    end = world.take_hooks()
    assert [h.state for h in end] == ["hangup", "cdr"]
    assert end[0].payload["billsec"] == 30 and end[0].payload["duration"] == 35
    cdr = end[1].payload
    assert cdr["call_id"] == flow.flow_id and cdr["status"] == "ANSWERED"
    assert cdr["from_number"] == "0899123456" and cdr["hotline"] == "19001919"
    assert cdr["extension"] == "1002" and cdr["recording_url"].endswith(".wav")
    record = world.cdrs.get(flow.flow_id)
    assert record is not None and record.direction == 1 and record.receive_dest == ""
    assert not world.legs and not world.flows


def test_unanswered_outbound_is_one_call_id_with_its_outcome() -> None:
    world = make_world(2, ratio=1.0)
    flow = world.start_outbound(ext="1001", number="0899", hotline="19001919", ring_seconds=3,
                                talk_seconds=None, answered=False, outcome="BUSY")  # fmt: skip
    world.advance(START + 3)
    hooks = world.take_hooks()
    assert [h.state for h in hooks] == ["ringing", "hangup", "cdr"]
    assert {h.payload["call_id"] for h in hooks} == {flow.flow_id}
    assert hooks[-1].payload["status"] == "BUSY" and hooks[-1].payload["recording_url"] == ""
    assert hooks[0].payload["from_number"] == "1001" and hooks[0].payload["to_number"] == "0899"
    record = world.cdrs.get(flow.flow_id)
    assert record is not None and record.time_answered == "" and record.direction == 3


def test_a_declining_phone_leaves_the_others_ringing() -> None:
    world = make_world(3, ratio=1.0)
    flow = world.start_inbound(exts=["1001", "1002"], number="0899", hotline="1900",
                               ring_seconds=None, talk_seconds=None, answer_by=None,
                               manual=True)  # fmt: skip
    first, second = flow.legs
    assert world.hangup(first.call_id)
    assert world.agents["1001"].state == "idle" and world.agents["1002"].state == "ringing"
    assert world.hangup(second.call_id)
    assert world.take_hooks()[-1].payload["status"] == "NO ANSWER"
    assert not world.hangup(second.call_id)


def test_churn_logs_agents_out_and_back_but_never_the_supervisor() -> None:
    world = make_world(6, agents=40)
    Traffic(world).set_rate(1)
    seen_offline: set[str] = set()
    for step in range(1, 400):
        world.advance(START + step * 20.0)
        seen_offline |= {e for e, a in world.agents.items() if a.state == "offline"}
    assert len(seen_offline) > 10 and "999" not in seen_offline
    assert world.agents["999"].state in ("idle", "oncall", "ringing")
