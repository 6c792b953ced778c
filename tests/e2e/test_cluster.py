"""Several `wallboard serve` processes on one Redis, for real (issue 14): the simulator's
traffic with faulty webhooks spread over the nodes by a front, screens on every node;
then the leader killed (and every node back on the truth), the leader frozen past its
lease, Redis restarted. Two clusters in all: each test puts one through several faults."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.cluster.rig import LEASE_S, POLL_S, SECRET, Node, Rig, Screen, front, nodes_of, same_patches
from tests.factories import webhook_body
from tests.servers import sim_server, until
from tests.services import PostgresServer, RedisServer, postgres_server, redis_server
from wallboard.cluster.keys import Keys
from wallboard.cluster.redis_client import connect

pytestmark = pytest.mark.slow
KEYS = Keys("default")


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
async def rig(tmp_path: Path, pg: PostgresServer, redis_srv: RedisServer) -> AsyncIterator[Rig]:
    with sim_server(tmp_path, "--agents", "12", "--seed", "14", "--rate", "120", "--profile", "flat") as sim:
        async with front() as (spread, front_url):
            made = Rig(tmp_path, redis_srv, pg.url, sim.url, front_url, spread)
            with nodes_of(made):
                await made.start_nodes("n1", "n2", "n3")
                yield made


@pytest.fixture
async def redis(redis_srv: RedisServer) -> AsyncIterator[Redis]:
    client = connect(redis_srv.url)
    try:
        yield client
    finally:
        await client.aclose()


async def screens_on(nodes: list[Node]) -> list[Screen]:
    """A screen on each node, once each node holds the line (before, it serves an empty board)."""
    async with httpx.AsyncClient(timeout=5) as http:
        for node in nodes:
            deadline = time.monotonic() + 15
            while (await http.get(node.url + "/readyz")).status_code != 200:
                assert time.monotonic() < deadline, f"{node.name} never ready"
                await asyncio.sleep(0.05)
    screens = [Screen(node) for node in nodes]
    await until(lambda: all(s.of("snapshot") for s in screens), 10, "every screen's snapshot")
    return screens


FAULTS = {"hook_duplicate": 0.2, "hook_drop": 0.15, "hook_reorder": 0.2, "hook_delay": 0.15, "hook_delay_seconds": 0.4}


def board(state: dict[str, Any]) -> dict[str, Any]:
    return {"agents": {a["ext"]: (a["state"], a["call_id"]) for a in state["agents"]},
            "calls": {c["call_id"]: c["state"] for c in state["calls"]}}


def expected(truth: dict[str, Any], seen: dict[str, Any]) -> dict[str, Any]:
    """The truth as a board shows it: agents never logged in today are not on it."""
    return {"agents": {a["ext"]: (a["state"], a["call_id"]) for a in truth["agents"]
                       if a["state"] != "offline" or a["ext"] in seen},
            "calls": {c["call_id"]: c["state"] for c in truth["calls"]}}


async def converged(rig: Rig, http: httpx.AsyncClient) -> list[str]:
    """The nodes whose board is not the truth read just before or just after it."""
    differ = []
    for node in rig.nodes:
        if not node.alive():
            continue
        before = (await http.get(rig.sim_url + "/_sim/truth")).json()
        now = board((await http.get(node.url + "/api/state")).json())
        after = (await http.get(rig.sim_url + "/_sim/truth")).json()
        if now not in (expected(before, now["agents"]), expected(after, now["agents"])):
            differ.append(node.name)
    return differ


async def pbx_requests(node: Node) -> float:
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(node.url + "/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("wallboard_pbx_requests_total"))


async def test_the_leader_killed_under_faulty_traffic(rig: Rig) -> None:
    """Another node leads within the lease and a poll; screens on the others see no gap and no
    snapshot; the dead node's screens resume elsewhere with patches; every node then shows
    the truth, the webhooks having come through all three."""
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.post(rig.sim_url + "/_sim/faults", json=FAULTS)).status_code == 200
        assert (await http.post(rig.sim_url + "/_sim/traffic", json={"rate": 240})).status_code == 200
        leader = await rig.settled_leader()
        others = [n for n in rig.nodes if n is not leader]
        screens = await screens_on(rig.nodes)
        mine = screens[rig.nodes.index(leader)]
        await until(lambda: len(rig.front.sent) == 3 and min(s.seq for s in screens) >= 5, 20,
                    "webhooks through every node, patches on every screen")

        rig.kill(leader)
        killed = time.monotonic()
        held = mine.seq
        new = await rig.leader(LEASE_S + POLL_S + 10)
        took = time.monotonic() - killed
        assert new is not leader
        assert took <= LEASE_S + POLL_S + 1.0, f"a new leader after {took:.2f} s"

        await asyncio.wait_for(mine.closed.wait(), 5)
        back = Screen(others[0], epoch=mine.epoch, seq=held)  # as socket.js comes back
        survivors = [s for s in screens if s is not mine]
        after = max(s.seq for s in survivors)
        for screen in [*survivors, back]:
            await screen.until_seq(after + 3, within=LEASE_S + 10)
        assert (await http.post(rig.sim_url + "/_sim/traffic", json={"rate": 0})).status_code == 200

        deadline = time.monotonic() + 30
        while differ := await converged(rig, http):
            assert time.monotonic() < deadline, f"{differ} never matched the truth"
            await asyncio.sleep(0.2)
        stats = (await http.get(rig.sim_url + "/_sim/stats")).json()
    for screen in survivors:
        screen.line()  # one snapshot, then every seq: no gap, no snapshot across the failover
    back.line(resumed_at=held)
    same_patches(*screens, back)
    for screen in [*screens, back]:
        await screen.close()
    print(f"new leader after {took:.2f} s; webhooks per node {rig.front.sent}; simulator {stats.get('hooks')}")


async def test_a_frozen_leader_then_redis_restarted(rig: Rig, redis: Redis, redis_srv: RedisServer) -> None:
    # SIGSTOP past the lease, then SIGCONT: another leads; the frozen one publishes nothing
    # (Redis refuses its fence), says it no longer leads and stops reading the PBX.
    leader = await rig.settled_leader()
    others = [n for n in rig.nodes if n is not leader]
    screens = await screens_on(rig.nodes)
    asked = {node.name: await pbx_requests(node) for node in rig.nodes}
    await screens[0].until_seq(max(s.seq for s in screens) + 3)
    deadline = time.monotonic() + 10
    while await pbx_requests(leader) < asked[leader.name] + 4:  # a few polls of the leader's
        assert time.monotonic() < deadline, "the leader does not read the PBX"
        await asyncio.sleep(0.1)
    for node in others:  # ... and none of the others'
        assert await pbx_requests(node) == asked[node.name], node.name
    old_fence = int((await redis.get(KEYS.lease)).split()[1])
    leader.server.proc.send_signal(signal.SIGSTOP)
    try:
        assert await rig.leader(LEASE_S + POLL_S + 10, besides=leader) in others
        survivors = [s for s in screens if s.node is not leader]
        await survivors[0].until_seq(survivors[0].seq + 3)
    finally:
        leader.server.proc.send_signal(signal.SIGCONT)
    await until(lambda: "no longer leads" in leader.server.log(), 10, "the old leader to step down")
    assert (await rig.readyz(leader))["role"] == "follower"
    for screen in screens:
        await screen.until_seq(max(s.seq for s in screens) + 3, within=10)
    fences = [int(fields[b"f"]) for _, fields in await redis.xrange(KEYS.patches)]
    newer = [i for i, f in enumerate(fences) if f > old_fence]
    assert newer, "the new leader published nothing"
    assert old_fence not in fences[newer[0]:], "the frozen leader's write got in after the new leader's"
    for screen in screens:
        screen.line()
    same_patches(*screens)

    # Redis killed (no persistence: it comes back empty). Down: screens stay on the last
    # state, pings go on with the sources' times standing still (the board turns stale),
    # webhooks are refused for the PBX to send again. Back: one leader, a new line, every
    # screen on it, without a restart.
    await until(lambda: any(p["at"].get("agents") for p in screens[0].of("ping")), 10, "a ping with the sources")
    pings = len(screens[0].of("ping"))
    redis_srv.kill()
    await until(lambda: len(screens[0].of("ping")) >= pings + 2, 15, "two pings while Redis is down")
    async with httpx.AsyncClient(timeout=5) as http:
        answer = await http.post(rig.nodes[1].url + f"/hooks/pbx/{SECRET}", json=webhook_body("ringing", "x-1"))
    assert answer.status_code == 503
    frozen = [m["at"]["agents"] for m in screens[0].of("ping")[-2:]]
    assert frozen[0] == frozen[1], "the sources' times moved while Redis was down"
    assert all(not s.closed.is_set() for s in screens)
    redis_srv.start()
    await rig.leader(20)
    await until(lambda: all(len(s.of("snapshot")) == 2 for s in screens), 20, "a snapshot of the new line")
    for screen in screens:
        await screen.until_seq(screen.seq + 2, within=15)
    assert len({s.of("snapshot")[-1]["epoch"] for s in screens}) == 1
    for screen in screens:
        await screen.close()
