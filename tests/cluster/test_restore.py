"""A next leader carries on the line: LiveState.export at a snapshot, then the patches after
it, gives the state the old leader had (what screens hold, and what the merge rules need);
and the mirror every node keeps from the bus holds what screens hold."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from tests.factories import T0, agent, call, event, live
from tests.test_apply import World
from wallboard.apply import LostTrack
from wallboard.audience import Audience, screen_state
from wallboard.bus import Published
from wallboard.cluster.mirror import Mirror
from wallboard.cluster.node import internal_form
from wallboard.engine import encode
from wallboard.patches import Op
from wallboard.state import LiveState

SEEDS = range(8)


class Recorded(World):
    """The seeded call center, its export taken at one commit and every patch after it
    kept as the bus holds it: the screens' payloads and the engine's own form."""

    def __init__(self, seed: int, at: int) -> None:
        self.at = at
        self.commits = 0
        self.saved: dict[str, Any] | None = None
        self.after: list[tuple[Published, bytes | None]] = []
        super().__init__(seed)

    def commit(self) -> None:
        patch = self.state.commit(self.ops)
        self.ops = []
        if patch is None:
            return
        self.commits += 1
        item = encode(self.state.epoch, patch)
        if self.saved is not None:
            self.after.append((item, internal_form(patch)))
        if self.commits == self.at:
            self.saved = orjson.loads(orjson.dumps(self.state.export()))  # as Redis holds it


def replayed(world: Recorded) -> list[list[Op]]:
    """What a new leader replays: the engine's form where there is one, else the supervisors'."""
    return [orjson.loads(x or item.payloads[Audience.SUPERVISOR])["ops"] for item, x in world.after]


def shown(state: dict[str, Any]) -> dict[str, Any]:
    """Comparable, less what patches do not carry: each source's last success (pings do, and
    the new leader's first reads move it) and the webhook counters (snapshots only)."""
    out = {k: v for k, v in state.items() if k != "now"}
    out["sources"] = {k: {**v, "at": None} for k, v in state["sources"].items() if k != "webhooks"}
    out["agents"] = {a["ext"]: a for a in state["agents"]}
    out["calls"] = {c["call_id"]: c for c in state["calls"]}
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_a_new_leader_holds_what_the_old_one_had(seed: int) -> None:
    world = Recorded(seed, at=random.Random(seed).randrange(3, 30))
    world.run()
    assert world.saved is not None and world.after, "the world committed too little"
    carried = live(T0)
    carried.restore(world.saved, replayed(world), world.now)
    assert (carried.epoch, carried.seq) == (world.state.epoch, world.state.seq)
    assert shown(carried.snapshot(world.now)) == shown(world.state.snapshot(world.now))
    # what only the merge rules know: the calls' phases (those begun since the snapshot as a
    # poll would see them: a later webhook still moves them, never back), the day's flows
    for call_id in world.state.calls:
        if call_id in world.saved["phase"]:
            assert carried.phase(call_id) == world.state.phase(call_id)
        else:
            assert 1 <= carried.phase(call_id) <= world.state.phase(call_id)
    assert carried.stats.flows.keys() <= world.state.stats.flows.keys()


@pytest.mark.parametrize("seed", SEEDS)
def test_the_new_leader_goes_on_as_the_old_one_would(seed: int) -> None:
    world = Recorded(seed, at=20)
    world.run()
    assert world.saved is not None
    carried = live(T0)
    carried.restore(world.saved, replayed(world), world.now)
    later = world.now + 5000
    for state in (world.state, carried):
        ops = state.apply_agents([agent("1001", "ringing", "next-1", direction="inbound", peer="0899000111")], later)
        ops += state.apply_calls([call("next-1", ext="1001")], later)
        ops += state.apply_event(event("answered", "next-1", ext="1001", at=later + 100))
        state.commit(ops)
    assert (carried.seq, carried.epoch) == (world.state.seq, world.state.epoch)
    mine, theirs = shown(carried.snapshot(later)), shown(world.state.snapshot(later))
    del mine["stats"], theirs["stats"]  # CDRs since the snapshot are counted by the next CDR read
    assert mine == theirs


def test_patches_that_do_not_follow_the_snapshot_are_refused() -> None:
    world = Recorded(3, at=10)
    world.run()
    assert world.saved is not None
    with pytest.raises(LostTrack):
        live(T0).restore(world.saved, [[["upd", "agents", "no-such-agent", {"state": "idle"}]]], world.now)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_mirror_holds_what_screens_hold(seed: int) -> None:
    world = Recorded(seed, at=1)
    world.run()
    assert world.saved is not None
    mirror = Mirror()
    first, rest = world.after[:5], world.after[5:]
    mirror.load(world.saved["view"], [item for item, _ in first])
    for item, _ in rest:
        assert mirror.apply(item)
    assert (mirror.epoch, mirror.seq) == (world.state.epoch, world.state.seq)
    for audience in Audience:
        held = orjson.loads(mirror.snapshot_bytes(audience, world.now)[1])
        want = screen_state(world.state.snapshot(world.now), audience)
        assert shown(held["state"]) == shown(want), audience
    assert not mirror.apply(Published("another", world.state.seq + 1, rest[-1][0].payloads))
    assert not mirror.apply(Published(world.state.epoch, world.state.seq + 2, rest[-1][0].payloads))


def test_an_empty_mirror_serves_an_empty_board() -> None:
    mirror = Mirror()
    assert not mirror.loaded and mirror.call("x") is None
    seq, body = mirror.snapshot_bytes(Audience.WHOLE, T0)
    assert seq == 0 and orjson.loads(body)["state"]["agents"] == []


def test_a_fresh_state_exports_and_restores() -> None:
    state: LiveState = live(T0)
    again = live(T0)
    again.restore(orjson.loads(orjson.dumps(state.export())), [], T0)
    assert shown(again.snapshot(T0)) == shown(state.snapshot(T0))
