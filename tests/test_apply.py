"""wallboard/apply.py against static/js/store.js, on the same patch streams.

A LiveState is driven by a seeded little call center: webhooks (some lost, some twice,
some late), agent and call polls answered late, the day's status, CDRs, supervisors
listening in, agents logging out and renamed, ticks and a new day. Each committed patch
is encoded as the engine encodes it for each audience, and the streams go through
store.js (in node, tests/js/replay_store.mjs) and through apply.py. After every patch
and ping both must hold the same, and that is the state's own snapshot at the same seq
as the audience sees it. Then the same streams with patches lost, replayed, cut short
or from another epoch: both must agree on when to ask for a snapshot, and on what they
hold until then.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from typing import Any

import orjson
import pytest

from tests.factories import T0, agent, call, event, live, status
from tests.jsnode import run_node
from wallboard.apply import TOP_KEYS, LostTrack, Replica
from wallboard.audience import Audience, screen_state
from wallboard.engine import encode
from wallboard.patches import Op, snapshot_message
from wallboard.pbx.events import CallEvent

SEEDS = range(12)
STEPS = 160
EXTS = ["1001", "1002", "1003", "1004", "1005", "999"]  # 999: the supervisors' phone
NUMBERS = ["0899123456", "0912345678", "02838123456", "1002"]
DAY_MS = 24 * 3600 * 1000


def wire(value: Any) -> Any:
    """As a screen gets it: through JSON."""
    return json.loads(orjson.dumps(value))


def held(state: dict[str, Any], *, times: bool = True) -> dict[str, Any]:
    """A state's collections by key and its top-level values, less the webhook counters
    (they move with every webhook and travel in snapshots only) and, unless `times`, the
    sources (their times move by pings)."""
    out = {k: v for k, v in state.items() if k in ("agents", "calls", *TOP_KEYS)}
    out["sources"] = {k: v for k, v in out["sources"].items() if k != "webhooks"} if times else None
    return out


def same(a: Any, b: Any) -> bool:
    """Equal as JSON, which `==` is not: True == 1 and {"a": 1} == {"a": 1.0} in Python, and
    node writes 12.0 as 12."""
    def canonical(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: canonical(x) for k, x in v.items()}
        if isinstance(v, list):
            return [canonical(x) for x in v]
        return int(v) if isinstance(v, float) and v.is_integer() else v

    return json.dumps(canonical(a), sort_keys=True) == json.dumps(canonical(b), sort_keys=True)


def keyed(snapshot_state: dict[str, Any]) -> dict[str, Any]:
    return held({**snapshot_state, "agents": {a["ext"]: a for a in snapshot_state["agents"]},
                 "calls": {c["call_id"]: c for c in snapshot_state["calls"]}})


@dataclass
class Frame:
    """One committed patch as an audience gets it, the ping after it and the snapshot
    at its seq."""

    patch: dict[str, Any]
    ping: dict[str, Any]
    snapshot: dict[str, Any]


class World:
    """A small call center told to a LiveState as the PBX tells it, committed now and
    then as the engine does, each patch kept as every audience gets it."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.now = T0
        self.state = live(T0)
        self.online = set(EXTS)
        self.names = {ext: f"Agent {ext}" for ext in EXTS}
        self.calls: dict[str, dict[str, Any]] = {}  # the PBX's live calls
        self.late: list[tuple[int, CallEvent]] = []  # webhooks on their way: (due, event)
        self.ops: list[Op] = []
        self.made = 0
        self.first = {aud: self.snapshot(aud) for aud in Audience}
        self.frames: dict[Audience, list[Frame]] = {aud: [] for aud in Audience}

    def snapshot(self, audience: Audience) -> dict[str, Any]:
        return wire(snapshot_message(self.state.seq, screen_state(self.state.snapshot(self.now), audience)))

    def run(self) -> World:
        actions = {self.ring: 6, self.answer: 4, self.end: 4, self.poll_agents: 4, self.poll_calls: 3,
                   self.report: 1, self.monitor: 2, self.tick: 2, self.rename: 1, self.away: 1}
        new_day = self.rng.randrange(STEPS // 3, STEPS)
        for step in range(STEPS):
            self.now += self.rng.randint(100, 4000)
            for due, ev in [x for x in self.late if x[0] <= self.now]:
                self.late.remove((due, ev))
                self.deliver(ev)
            if step == new_day:
                self.now = self.state.time.day_start_ms(self.now) + DAY_MS + 1000
                self.tick()
            else:
                self.rng.choices(list(actions), weights=list(actions.values()))[0]()
            if self.rng.random() < 0.6:  # else the next step's changes join this patch
                self.commit()
        self.commit()
        return self

    def commit(self) -> None:
        patch = self.state.commit(self.ops)
        self.ops = []
        if patch is None:
            return
        published = encode(self.state.epoch, patch)
        ping = wire({"type": "ping", "at": self.state.last_heard()})
        for aud in Audience:
            self.frames[aud].append(Frame(json.loads(published.payloads[aud]), ping, self.snapshot(aud)))

    # ---- what happens ---------------------------------------------------------------

    def hook(self, state: str, call_id: str, c: dict[str, Any], **fields: Any) -> None:
        """A webhook: mostly delivered at once, else lost, late, or both at once and late."""
        ev = event(state, call_id, ext=c["ext"], direction=c["direction"], number=c["number"], at=self.now,
                   **fields)
        fate = self.rng.random()
        if 0.1 <= fate < 0.3:
            self.late.append((self.now + self.rng.randint(500, 8000), ev))
        if fate >= 0.2:
            self.deliver(ev)

    def deliver(self, ev: CallEvent) -> None:
        self.ops += self.state.apply_event(replace(ev, received=self.now))

    def ring(self) -> None:
        free = sorted(self.online - {c["ext"] for c in self.calls.values()})
        if free:
            self.made += 1
            call_id = f"s{self.seed}-c{self.made}"
            self.calls[call_id] = c = {"ext": self.rng.choice(free), "answered": False, "began": self.now,
                                       "direction": self.rng.choice(["inbound", "outbound"]),
                                       "number": self.rng.choice(NUMBERS)}
            self.hook("ringing", call_id, c)

    def answer(self) -> None:
        ringing = sorted(k for k, c in self.calls.items() if not c["answered"])
        if ringing:
            call_id = self.rng.choice(ringing)
            self.calls[call_id]["answered"] = True
            self.hook("answered", call_id, self.calls[call_id])

    def end(self) -> None:
        if not self.calls:
            return
        call_id = self.rng.choice(sorted(self.calls))
        c = self.calls.pop(call_id)
        self.hook("hangup", call_id, c)
        if self.rng.random() < 0.7:
            self.hook("cdr", call_id, c, status="ANSWERED" if c["answered"] else "NO ANSWER", extension=c["ext"],
                      time_started=c["began"], time_answered=c["began"] + 1000 if c["answered"] else None,
                      time_ended=self.now)

    def poll_agents(self) -> None:
        """Answered now, asked a little earlier (webhooks since then are newer)."""
        on_call = {c["ext"]: (k, c) for k, c in self.calls.items()}
        rows = []
        for ext in sorted(self.online):
            call_id, c = on_call.get(ext, ("", None))
            if c is None:
                rows.append(agent(ext, name=self.names[ext]))
            else:
                rows.append(agent(ext, "oncall" if c["answered"] else "ringing", call_id, direction=c["direction"],
                                  peer=c["number"], name=self.names[ext]))
        self.ops += self.state.apply_agents(rows, self.now - self.rng.randint(0, 1500))

    def poll_calls(self) -> None:
        rows = [call(k, ext=c["ext"], direction=c["direction"], number=c["number"],
                     state="CS_EXCHANGE_MEDIA" if c["answered"] else "CS_ROUTING")
                for k, c in sorted(self.calls.items())]
        self.ops += self.state.apply_calls(rows, self.now - self.rng.randint(0, 1500))

    def report(self) -> None:
        rng = self.rng
        counts = status(answered=rng.randint(0, 50), busy=rng.randint(0, 9), no_answer=rng.randint(0, 9))
        self.ops += self.state.apply_status(counts, self.now)

    def monitor(self) -> None:
        """A supervisor's phone (999) listens in, or stops."""
        if not self.state.calls:
            return
        call_id = self.rng.choice(sorted(self.state.calls))
        info = {"agent": self.state.calls[call_id]["agent"], "by": "Sup", "ext": "999",
                "mode": self.rng.choice(["listen", "whisper", "barge"])}
        self.ops += self.state.set_monitor(call_id, None if call_id in self.state.monitors else info, self.now)

    def tick(self) -> None:
        self.ops += self.state.tick(self.now)

    def rename(self) -> None:
        ext = self.rng.choice(EXTS)
        self.names[ext] = f"Agent {ext} {self.now % 1000}"

    def away(self) -> None:
        """An agent off a call logs out, or back in."""
        ext = self.rng.choice(EXTS)
        if ext not in {c["ext"] for c in self.calls.values()}:
            self.online ^= {ext}


@pytest.fixture(scope="module")
def made() -> list[World]:
    return [World(seed).run() for seed in SEEDS]


class Screens:
    """The same messages to store.js (all at once, in node) and to a Replica each."""

    def __init__(self) -> None:
        self.feed: list[dict[str, Any]] = []
        self.py: list[tuple[str, dict[str, Any] | None]] = []  # apply.py's answer and state
        self.expected: list[dict[str, Any] | None] = []
        self.copies: dict[str, Replica] = {}

    def send(self, screen: str, message: dict[str, Any], expected: dict[str, Any] | None = None) -> str:
        message = wire(message)
        self.feed.append({"screen": screen, "message": message})
        self.expected.append(expected)
        answer = "ok"
        try:
            if message["type"] == "snapshot":
                self.copies[screen] = Replica.from_snapshot(message)
            elif message["type"] == "patch":
                answer = "ok" if self.copies[screen].patch(message) else "old"
            else:
                self.copies[screen].heard(message["at"])
        except LostTrack:
            answer = "gap"
        self.py.append((answer, self.copies[screen].state() if answer != "gap" else None))
        return answer

    def check(self) -> int:
        """Run store.js on everything sent; compare message by message."""
        js = run_node("replay_store.mjs", self.feed)
        assert len(js) == len(self.feed)
        for i, (out, (answer, py), want) in enumerate(zip(js, self.py, self.expected, strict=True)):
            where = f"message {i} to {self.feed[i]['screen']}: {self.feed[i]['message']}"
            assert out["answer"] == answer, where
            if answer == "gap":
                continue  # both ask for a snapshot; what they hold until it comes is moot
            assert py is not None
            assert same(held(out["state"]), held(py)), where
            if want is not None:
                times = self.feed[i]["message"]["type"] != "patch"
                assert same(held(py, times=times), held(want, times=times)), where
        return len(js)


def test_store_js_and_apply_py_hold_the_snapshot_after_every_patch(made: list[World]) -> None:
    screens = Screens()
    for world in made:
        for aud in Audience:
            frames = world.frames[aud]
            assert len(frames) > STEPS // 5
            # One screen from the start, one joining half way.
            joins = {f"{world.seed}-{aud}-first": -1, f"{world.seed}-{aud}-late": len(frames) // 2}
            for screen, joined in joins.items():
                first = world.first[aud] if joined < 0 else frames[joined].snapshot
                screens.send(screen, first, keyed(first["state"]))
                for frame in frames[joined + 1:]:
                    assert screens.send(screen, frame.patch, keyed(frame.snapshot["state"])) == "ok"
                    screens.send(screen, frame.ping, keyed(frame.snapshot["state"]))
    assert screens.check() > 5_000


def test_what_the_streams_hold(made: list[World]) -> None:
    """The streams reach what they must for the test above to mean something."""
    kinds: set[str] = set()
    for world in made:
        for frame in world.frames[Audience.SUPERVISOR]:
            for op in frame.patch["ops"]:
                shape = "list" if len(op) > 3 and isinstance(op[3], list) else "named"
                with_agent = op[1] == "calls" and len(op) > (3 if op[0] == "del" else 4)
                kinds.add(f"{op[0]} {op[1]}" + (f" {shape}" if op[0] == "put" else "")
                          + (" +agent" if with_agent else ""))
    assert kinds >= {"put agents list", "upd agents", "del agents", "put calls list", "put calls list +agent",
                     "upd calls +agent", "upd calls", "del calls", "del calls +agent", "set status", "set sources",
                     "set monitors", "set domain", "merge stats"}, sorted(kinds)


def faulty(screens: Screens, screen: str, first: dict[str, Any], frames: list[Frame], rng: random.Random) -> None:
    """A screen's stream with faults; after a gap it gets the snapshot at the seq it was
    sent, as the server answers a resync."""
    screens.send(screen, first)
    for i, frame in enumerate(frames):
        fault = rng.random()
        message = frame.patch
        if fault < 0.05:
            continue  # lost
        if fault < 0.1 and i:
            screens.send(screen, frames[i - 1].patch)  # again
        elif fault < 0.2 and message["ops"]:
            ops = list(message["ops"])
            del ops[rng.randrange(len(ops))]  # cut short
            message = {**message, "ops": ops}
        elif fault < 0.23:
            message = {**message, "epoch": "another"}
        if screens.send(screen, message) == "gap":
            screens.send(screen, frame.snapshot)
        else:
            screens.send(screen, frame.ping)


def test_store_js_and_apply_py_lose_track_alike(made: list[World]) -> None:
    screens = Screens()
    for world in made:
        rng = random.Random(world.seed)
        for aud in Audience:
            faulty(screens, f"{world.seed}-{aud}", world.first[aud], world.frames[aud], rng)
    sent = screens.check()
    answers = [a for a, _ in screens.py]
    assert answers.count("gap") > 50 and answers.count("old") > 20 and sent > 3_000


BASE: dict[str, Any] = {
    "agents": [{"ext": "1001", "name": "A", "state": "idle", "since": 1, "call_id": None, "direction": None,
                "peer": None}],
    "calls": [{"call_id": "c1", "agent": "1001", "from": "0899123456", "to": "1001", "direction": "inbound",
               "state": "ringing", "started_at": 2, "hotline": None, "answered_at": None}],
    "status": {"counts": {}, "total": 0}, "stats": None, "sources": {"agents": {"ok": True, "at": 1}},
    "monitors": [], "domain": "",
}
C2 = {"call_id": "c2", "agent": "7777", "from": "1", "to": "2", "direction": "outbound", "state": "ringing",
      "started_at": 3, "hotline": None, "answered_at": None}
ODD_OPS: list[list[Op]] = [
    [["merge", "stats", {"a": 1}]], [["merge", "status", {"total": 3}]], [["set", "nope", 1]],
    [["frob", "agents", "1001", {}]], [["put", "agents", "1002", ["B", "idle"]]],
    [["put", "agents", 1003, {"ext": "1003"}]], [["put", "agents", True, {"ext": "t"}]],
    [["put", "agents", None, {"ext": "n"}]], [["put", "agents", 1005.0, {"ext": "1005"}]],
    [["put", "agents", "1004", 0]], [["put", "agents", "1004"]], [["put", "agents"]],
    [["upd", "agents", "9999", {"state": "idle"}]], [["upd", "agents", "1001", "ab"]],
    [["upd", "calls", "c1", {"state": "answered", "answered_at": 5}, 1]],
    [["upd", "calls", "c1", {"state": "answered", "answered_at": 5}, 1.0]],
    [["upd", "calls", "c1", {"state": "answered", "answered_at": 5}, True]],
    [["upd", "calls", "c1", {"agent": None}, 1]], [["put", "calls", "c2", C2, 1]], [["put", "calls", "c2", C2]],
    [["put", "calls", "c2", ["1001", "1", "2", "outbound", "ringing", 3], 1]],
    [["del", "calls", "c1", 99]], [["del", "calls", "zzz", 99]], [["del", "calls", "c1", "99"]],
    [["del", "calls", "c1", None]], [["del", "agents", "1001", 5]],
    [["del", "agents", "1001"], ["del", "calls", "c1", 9]],
    [["set", "monitors", None]], [["set", "domain", "x"], ["merge", "domain", {"a": 1}]],
    [["merge", "sources", [1]]], [["merge", "domain", {"a": 1}]],
    [["set", "status", None], ["merge", "status", {"total": 1}]],
    [["upd", "agents", "1001", {"name": "B"}], ["upd", "agents", "404", {}], ["set", "domain", "late"]],
]
ODD_MESSAGES: list[dict[str, Any]] = [
    {"type": "patch", "seq": 1, "ops": [["set", "domain", "old"]]},
    {"type": "patch", "seq": 3, "ops": []},
    {"type": "patch", "seq": 2, "epoch": "other", "ops": []},
    {"type": "patch", "seq": 2, "epoch": "e1", "ops": [["set", "domain", "same epoch"]]},
    {"type": "ping", "at": {"agents": 7, "calls": 8, "status": None}},
    {"type": "ping", "at": {"agents": 1}},
    {"type": "ping", "at": {"agents": True}},
    {"type": "ping", "at": None},
]


def test_odd_ops_and_messages_alike() -> None:
    """What no server sends, but a screen must not read differently from store.js."""
    screens = Screens()
    snapshot = wire(snapshot_message(1, {**BASE, "epoch": "e1"}))
    for i, ops in enumerate(ODD_OPS):
        screens.send(f"odd-{i}", snapshot)
        screens.send(f"odd-{i}", {"type": "patch", "seq": 2, "ops": ops})
    for i, message in enumerate(ODD_MESSAGES):
        screens.send(f"message-{i}", snapshot)
        screens.send(f"message-{i}", message)
    # Epochs are strings; were one an object, store.js would hold no other equal to it.
    screens.send("object-epoch", wire(snapshot_message(1, {**BASE, "epoch": {"n": 1}})))
    screens.send("object-epoch", {"type": "patch", "seq": 2, "epoch": {"n": 1}, "ops": []})
    no_fields = {**snapshot, "fields": None}
    screens.send("no-fields", no_fields)
    screens.send("no-fields", {"type": "patch", "seq": 2, "ops": [["put", "agents", "1002", ["B"]]]})
    screens.check()
    answers = [a for a, _ in screens.py]
    assert answers.count("gap") >= 14 and answers.count("old") == 1
