"""The Redis Streams bus against a real redis-server: two buses are two nodes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.servers import until
from tests.services import RedisServer, redis_server
from wallboard.audience import Audience
from wallboard.bus import PatchBus, Published
from wallboard.cluster.lease import Leadership
from wallboard.cluster.redis_bus import Fenced, RedisBus, SeqGap
from wallboard.cluster.redis_client import connect


def patch(seq: int, epoch: str = "E1") -> Published:
    return Published(epoch, seq, {audience: f'{{"seq":{seq},"to":"{audience.value}"}}'.encode()
                                  for audience in Audience})


@contextlib.asynccontextmanager
async def leading(client: Redis, node: str = "a", scope: str = "acme",
                  lease: float = 5.0) -> AsyncIterator[Leadership]:
    lead = Leadership(client, scope, node, lease)
    await lead.start()
    try:
        await asyncio.wait_for(lead.won.wait(), 3)
        yield lead
    finally:
        await lead.stop()


@contextlib.asynccontextmanager
async def bus(client: Redis, lead: Leadership | None = None, *, history: int = 1024,
              maxlen: int = 10_000) -> AsyncIterator[RedisBus]:
    """A node's bus; without `lead`, a follower that never contends."""
    node = RedisBus(client, "acme", lead or Leadership(client, "acme", "follower"), history=history, maxlen=maxlen,
                    block_ms=200)
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


def as_bus(bus: PatchBus) -> PatchBus:
    """A RedisBus is a PatchBus, what the hub takes (mypy checks it here)."""
    return bus


async def take(items: AsyncIterator[Published], n: int, within: float = 5.0) -> list[Published]:
    got: list[Published] = []

    async def read() -> None:
        async for item in items:
            got.append(item)
            if len(got) == n:
                return

    await asyncio.wait_for(read(), within)
    return got


async def test_patches_reach_every_node_in_order(client: Redis) -> None:
    async with leading(client) as lead, bus(client, lead) as a, bus(client) as b, \
            a.subscribe() as on_a, as_bus(b).subscribe() as on_b:
        for seq in range(1, 201):
            await a.publish(patch(seq))
        got_a, got_b = await take(on_a, 200), await take(on_b, 200)
        assert [p.seq for p in got_a] == [p.seq for p in got_b] == list(range(1, 201))
        assert got_b[41] == patch(42)  # every audience's bytes, as published
        assert (b.epoch, b.seq) == ("E1", 200)
        assert await a.head() == ("E1", 200)


async def test_the_follower_cannot_publish(client: Redis) -> None:
    async with bus(client) as follower:
        with pytest.raises(Fenced):
            await follower.publish(patch(1))


async def test_seq_must_follow_the_head_and_a_retry_is_harmless(client: Redis) -> None:
    async with leading(client) as lead, bus(client, lead) as a, a.subscribe() as items:
        await a.publish(patch(1))
        await a.publish(patch(2))
        await a.publish(patch(2))  # the same write again (a retried script): nothing new
        with pytest.raises(SeqGap) as gap:
            await a.publish(patch(5))
        assert gap.value.last == 2
        await a.publish(patch(1, epoch="E2"))  # a new history starts anywhere
        assert [(p.epoch, p.seq) for p in await take(items, 3)] == [("E1", 1), ("E1", 2), ("E2", 1)]
        assert await client.xlen("wb:{acme}:patches") == 3


async def test_resume_from_the_stream_on_a_node_that_joined_later(client: Redis) -> None:
    async with leading(client) as lead, bus(client, lead) as a:
        for seq in range(1, 101):
            await a.publish(patch(seq))
        async with bus(client, history=10) as late:
            assert late.since("E1", 50) is None  # not in its own memory...
            resumed = await late.since_async("E1", 50)  # ...but still in the stream
            assert resumed is not None and [p.seq for p in resumed] == list(range(51, 101))
            assert resumed[0] == patch(51)
            assert [p.seq for p in late.since("E1", 95) or []] == [96, 97, 98, 99, 100]
            assert await late.since_async("E1", 100) == []
            assert await late.since_async("E1", 101) is None  # ahead of the line
            assert await late.since_async("E0", 50) is None  # another history
            assert await late.since_async("E1", 10, limit=20) is None  # too many to be worth it


async def test_trimmed_history_answers_none(client: Redis) -> None:
    async with leading(client) as lead, bus(client, lead, maxlen=20, history=5) as a:
        for seq in range(1, 401):
            await a.publish(patch(seq))
        held = await client.xlen("wb:{acme}:patches")
        assert held < 400  # MAXLEN ~ trims whole nodes of the stream
        assert await a.since_async("E1", 5) is None
        tail = await a.since_async("E1", 390)
        assert tail is not None and [p.seq for p in tail] == list(range(391, 401))


async def test_subscribe_from_a_seq_replays_what_the_node_holds(client: Redis) -> None:
    async with leading(client) as lead, bus(client, lead) as a:
        for seq in range(1, 6):
            await a.publish(patch(seq))
        async with a.subscribe(from_seq=3) as items:
            await a.publish(patch(6))
            assert [p.seq for p in await take(items, 3)] == [4, 5, 6]


async def test_snapshot_with_the_patch_and_at_the_head(client: Redis) -> None:
    async with leading(client) as lead, bus(client, lead) as a:
        assert await a.load_snapshot() is None
        await a.save_snapshot("E1", 0, {"state": b"S0", "whole": b"W0"})  # a line starts with a snapshot
        await a.publish(patch(1))
        await a.publish(patch(2), snapshot={"state": b"S2"})
        snap = await a.load_snapshot()
        assert snap is not None and (snap.epoch, snap.seq, dict(snap.parts)) == ("E1", 2, {"state": b"S2"})
        assert snap.fence == lead.fence
        with pytest.raises(SeqGap):
            await a.save_snapshot("E1", 1, {"state": b"old"})  # only the head's state may be stored


async def test_a_new_leader_continues_the_same_line(client: Redis) -> None:
    async with bus(client) as watcher, watcher.subscribe() as seen:
        async with leading(client, "a") as a_lead, bus(client, a_lead) as a:
            for seq in range(1, 11):
                await a.publish(patch(seq), snapshot={"state": b"S%d" % seq} if seq == 10 else None)
        async with leading(client, "b") as b_lead, bus(client, b_lead) as b:
            assert await b.head() == ("E1", 10)
            snap = await b.load_snapshot()
            assert snap is not None and snap.seq == 10
            await b.publish(patch(11))
            got = await take(seen, 11)
            assert [(p.epoch, p.seq) for p in got] == [("E1", s) for s in range(1, 12)]  # no gap, no new epoch
            fences = [fields[b"f"] for _, fields in await client.xrange("wb:{acme}:patches")]
            assert fences == [b"1"] * 10 + [b"2"]


@pytest.mark.parametrize("appendonly", [False, True], ids=["empty-after-restart", "aof"])
async def test_the_reader_reconnects_after_redis_is_killed_and_restarted(appendonly: bool) -> None:
    with redis_server(appendonly=appendonly) as srv:
        await _reconnect(srv)


async def _reconnect(srv: RedisServer) -> None:
    client = connect(srv.url, connect_timeout=0.5)
    states: list[bool] = []
    try:
        async with leading(client, lease=1.0) as lead, bus(client, lead) as a:
            follower = RedisBus(client, "acme", Leadership(client, "acme", "b"), block_ms=200,
                                on_connection=states.append)
            await follower.start()
            async with follower.subscribe() as items:
                for seq in range(1, 6):
                    await a.publish(patch(seq))
                assert [p.seq for p in await take(items, 5)] == [1, 2, 3, 4, 5]
                srv.kill()
                await until(lambda: not follower.connected, 5, "the reader to notice")
                await asyncio.wait_for(lead.lost.wait(), 2)
                srv.start()
                await until(lambda: follower.connected, 10, "the reader to reconnect")
                await asyncio.wait_for(lead.won.wait(), 5)
                # The leader continues its line; with the stream gone it starts at pos 1 again.
                for seq in range(6, 9):
                    await a.publish(patch(seq))
                got = await take(items, 3)
                assert [(p.epoch, p.seq) for p in got] == [("E1", 6), ("E1", 7), ("E1", 8)]
                assert states == [True, False, True]
            await follower.stop()
    finally:
        await client.aclose()


async def test_a_new_leader_replays_the_engines_own_patches_after_the_snapshot(client: Redis) -> None:
    async with leading(client) as lead, bus(client, lead) as a, bus(client) as b, b.subscribe() as on_b:
        await a.publish(patch(1), snapshot={"state": b"S1"})
        await a.publish(patch(2), internal=b'{"ops":"with the flow keys"}')
        await a.publish(patch(3))
        snap = await a.load_snapshot()
        assert snap is not None and snap.seq == 1
        replay = await a.replay_async(snap.epoch, snap.seq)
        assert replay == [(2, b'{"ops":"with the flow keys"}'), (3, patch(3).payloads[Audience.SUPERVISOR])]
        assert await take(on_b, 3) == [patch(1), patch(2), patch(3)]  # screens never see the engine's own
        assert await a.replay_async("E0", 1) is None


async def test_a_node_started_while_redis_is_down_says_so_and_catches_up(
        redis_srv: RedisServer, client: Redis, caplog: pytest.LogCaptureFixture) -> None:
    redis_srv.kill()
    node = RedisBus(client, "acme", Leadership(client, "acme", "b"), block_ms=200)
    await node.start()  # returns: the board serves what it has, shown stale
    assert not node.connected
    assert "Redis unreachable for the patch stream" in caplog.text
    redis_srv.start()
    try:
        async with node.subscribe() as items, leading(client) as lead, bus(client, lead) as a:
            await until(lambda: node.connected, 10, "the reader to connect")
            await a.publish(patch(1))
            assert await take(items, 1) == [patch(1)]
    finally:
        await node.stop()
