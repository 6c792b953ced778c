"""Several `wallboard serve` processes on one Redis, for real (issue 14): the simulator's
traffic, its webhooks spread over the nodes by a front, screens on every node; then the
leader killed, frozen past its lease, Redis restarted."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

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
                for name in ("n1", "n2", "n3"):
                    await asyncio.to_thread(made.start_node, name)
                yield made


@pytest.fixture
async def redis(redis_srv: RedisServer) -> AsyncIterator[Redis]:
    client = connect(redis_srv.url)
    try:
        yield client
    finally:
        await client.aclose()


async def screens_on(nodes: list[Node]) -> list[Screen]:
    screens = [Screen(node) for node in nodes]
    await until(lambda: all(s.of("snapshot") for s in screens), 10, "every screen's snapshot")
    return screens


async def test_the_leader_killed_under_traffic(rig: Rig) -> None:
    leader = await rig.leader()
    others = [n for n in rig.nodes if n is not leader]
    screens = await screens_on(rig.nodes)
    mine = screens[rig.nodes.index(leader)]
    start = max(s.seq for s in screens)
    for screen in screens:
        await screen.until_seq(start + 3)  # traffic flows to every node

    rig.kill(leader)
    killed = time.monotonic()
    held = mine.seq
    new = await rig.leader(LEASE_S + POLL_S + 10)
    took = time.monotonic() - killed
    assert new is not leader
    assert took <= LEASE_S + POLL_S + 1.0, f"a new leader after {took:.2f} s"

    # the dead node's screen comes back on another node and resumes with patches
    await asyncio.wait_for(mine.closed.wait(), 5)
    back = Screen(others[0], epoch=mine.epoch, seq=held)
    survivors = [s for s in screens if s is not mine]
    after = max(s.seq for s in survivors)
    for screen in [*survivors, back]:
        await screen.until_seq(after + 3, within=LEASE_S + 10)
    for screen in survivors:
        screen.line()  # one snapshot, then every seq: no gap, no snapshot across the failover
    back.line(resumed_at=held)
    same_patches(*screens, back)
    for screen in [*screens, back]:
        await screen.close()


async def test_a_leader_frozen_past_its_lease_publishes_nothing(rig: Rig, redis: Redis) -> None:
    leader = await rig.leader()
    others = [n for n in rig.nodes if n is not leader]
    screens = await screens_on(rig.nodes)
    await screens[0].until_seq(max(s.seq for s in screens) + 3)
    old_fence = int((await redis.get(KEYS.lease)).split()[1])

    leader.server.proc.send_signal(signal.SIGSTOP)
    try:
        new = await rig.leader(LEASE_S + POLL_S + 10, besides=leader)
        assert new in others
        survivors = [s for s in screens if s.node is not leader]
        await survivors[0].until_seq(survivors[0].seq + 3)
    finally:
        leader.server.proc.send_signal(signal.SIGCONT)
    # awake: it learns it lost, says so, and stops reading the PBX; nothing it writes gets in
    await until(lambda: "no longer leads" in leader.server.log(), 10, "the old leader to step down")
    assert (await rig.readyz(leader))["role"] == "follower"
    for screen in screens:
        await screen.until_seq(max(s.seq for s in screens) + 3, within=10)
    entries = await redis.xrange(KEYS.patches)
    fences = [int(fields[b"f"]) for _, fields in entries]
    newer = [i for i, f in enumerate(fences) if f > old_fence]
    assert newer, "the new leader published nothing"
    assert old_fence not in fences[newer[0]:], "the frozen leader's write got in after the new leader's"
    for screen in screens:
        screen.line()
    same_patches(*screens)
    for screen in screens:
        await screen.close()


async def test_redis_restarted_under_traffic(rig: Rig, redis_srv: RedisServer) -> None:
    screens = await screens_on(rig.nodes)
    for screen in screens:
        await screen.until_seq(screen.seq + 2)
    await until(lambda: any(p["at"].get("agents") for p in screens[0].of("ping")), 10, "a ping with the sources")
    pings = len(screens[0].of("ping"))
    redis_srv.kill()  # no persistence: Redis comes back empty
    # down: screens stay connected on the last state; pings go on, their sources' times stand still
    await until(lambda: len(screens[0].of("ping")) >= pings + 2, 15, "two pings while Redis is down")
    async with httpx.AsyncClient(timeout=5) as http:
        answer = await http.post(rig.nodes[1].url + f"/hooks/pbx/{SECRET}", json=webhook_body("ringing", "x-1"))
    assert answer.status_code == 503  # not taken: the PBX sends it again
    frozen = [m["at"]["agents"] for m in screens[0].of("ping")[-2:]]
    assert frozen[0] == frozen[1], "the sources' times moved while Redis was down"
    assert all(not s.closed.is_set() for s in screens)
    redis_srv.start()
    # back: one leader, a new line (Redis forgot the old one), every screen on it
    leader = await rig.leader(20)
    await until(lambda: all(len(s.of("snapshot")) == 2 for s in screens), 20, "a snapshot of the new line")
    for screen in screens:
        await screen.until_seq(screen.seq + 2, within=15)
    assert len({s.of("snapshot")[-1]["epoch"] for s in screens}) == 1
    assert leader.alive()
    for screen in screens:
        await screen.close()

