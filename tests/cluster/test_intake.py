"""The webhook intake against a real redis-server: accepted anywhere, applied once, in order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from tests.cluster.test_lease import freeze
from tests.cluster.test_redis_bus import patch
from tests.servers import until
from tests.services import RedisServer
from wallboard.cluster.intake import Intake, IntakeEvent
from wallboard.cluster.lease import Leadership
from wallboard.cluster.redis_bus import Fence, Fenced, RedisBus

LEASE = 1.0


@contextlib.asynccontextmanager
async def consuming(intake: Intake, lead: Fence) -> AsyncIterator[asyncio.Queue[IntakeEvent | Exception]]:
    """The leader's consumer as a task feeding a queue (the engine's loop, in short)."""
    out: asyncio.Queue[IntakeEvent | Exception] = asyncio.Queue()

    async def run() -> None:
        try:
            async for batch in intake.batches(lead, block_ms=200):
                for event in batch:
                    out.put_nowait(event)
        except Fenced as e:
            out.put_nowait(e)

    task = asyncio.create_task(run())
    try:
        yield out
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def get(out: asyncio.Queue[IntakeEvent | Exception], n: int) -> list[IntakeEvent]:
    got = []
    for _ in range(n):
        item = await asyncio.wait_for(out.get(), 5)
        assert isinstance(item, IntakeEvent), item
        got.append(item)
    return got


async def contenders(client: Redis) -> tuple[Leadership, Leadership]:
    a, b = Leadership(client, "acme", "a", LEASE), Leadership(client, "acme", "b", LEASE)
    await a.start()
    await asyncio.wait_for(a.won.wait(), 3)
    await b.start()
    return a, b


async def test_events_from_any_node_are_applied_in_order_and_acked(client: Redis) -> None:
    node_1, node_2 = Intake(client, "acme"), Intake(client, "acme")
    lead = Leadership(client, "acme", "a", LEASE)
    await lead.start()
    await asyncio.wait_for(lead.won.wait(), 3)
    try:
        async with consuming(node_1, lead) as out:
            for i in range(10):
                await (node_1 if i % 2 else node_2).accept(b'{"n":%d}' % i, 1_000 + i)
            events = await get(out, 10)
            assert [e.body for e in events] == [b'{"n":%d}' % i for i in range(10)]
            assert events[3].received == 1_003
            await node_1.ack(lead, [e.id for e in events])
            assert await client.xlen("wb:{acme}:intake") == 0  # what was applied is gone
            assert (await client.xpending("wb:{acme}:intake", "leaders"))["pending"] == 0
    finally:
        await lead.stop()


async def test_acked_with_the_patch_it_caused(client: Redis) -> None:
    intake = Intake(client, "acme")
    lead = Leadership(client, "acme", "a", LEASE)
    await lead.start()
    await asyncio.wait_for(lead.won.wait(), 3)
    bus = RedisBus(client, "acme", lead)
    try:
        async with consuming(intake, lead) as out:
            await intake.accept(b"{}", 1)
            (event,) = await get(out, 1)
            await bus.publish(patch(1), acks=[event.id])
            assert await client.xlen("wb:{acme}:intake") == 0
            assert (await client.xpending("wb:{acme}:intake", "leaders"))["pending"] == 0
    finally:
        await lead.stop()


async def test_an_event_read_but_not_applied_by_a_dead_leader_is_applied_by_the_next(client: Redis) -> None:
    intake = Intake(client, "acme")
    a, b = await contenders(client)
    try:
        async with consuming(intake, a) as out_a:
            await intake.accept(b'{"n":1}', 1)
            await intake.accept(b'{"n":2}', 2)
            assert len(await get(out_a, 2)) == 2  # read, never acknowledged: the leader dies now
            await freeze(a)
        await asyncio.wait_for(b.won.wait(), LEASE + 1)
        await intake.accept(b'{"n":3}', 3)
        async with consuming(intake, b) as out_b:
            events = await get(out_b, 3)
            assert [e.body for e in events] == [b'{"n":1}', b'{"n":2}', b'{"n":3}']  # the old ones first
            await intake.ack(b, [e.id for e in events])
        assert await client.xlen("wb:{acme}:intake") == 0
    finally:
        await a.stop()
        await b.stop()


@dataclass
class Stale:
    """A leader's view frozen at some moment: the token it won, whatever happened since."""

    token: str | None
    fence: int | None
    demoted: list[str] = field(default_factory=list)

    def demote(self, reason: str) -> None:
        self.demoted.append(reason)


async def test_a_frozen_leader_can_neither_take_nor_ack_events(client: Redis) -> None:
    intake = Intake(client, "acme")
    a, b = await contenders(client)
    try:
        await intake.accept(b'{"n":1}', 1)
        async with consuming(intake, a) as out_a:
            (event,) = await get(out_a, 1)
        frozen = Stale(a.token, a.fence)
        await freeze(a)
        await asyncio.wait_for(b.won.wait(), LEASE + 1)
        await intake.accept(b'{"n":2}', 2)
        with pytest.raises(Fenced):
            await intake.ack(frozen, [event.id])
        async with consuming(intake, frozen) as out_a:
            assert isinstance(await asyncio.wait_for(out_a.get(), 5), Fenced)
        assert len(frozen.demoted) == 2  # told by Redis, both times
        async with consuming(intake, b) as out_b:
            assert [e.body for e in await get(out_b, 2)] == [b'{"n":1}', b'{"n":2}']
    finally:
        await a.stop()
        await b.stop()


async def test_a_redis_restart_ends_the_consumer_and_the_next_win_starts_afresh(
        redis_srv: RedisServer, client: Redis) -> None:
    """Redis restarted empty: the lease is gone with everything else, so the consumer is
    fenced; the node leads again (fence 1, a new nonce) and a new consumer makes the group."""
    intake = Intake(client, "acme")
    lead = Leadership(client, "acme", "a", LEASE)
    await lead.start()
    await asyncio.wait_for(lead.won.wait(), 3)
    try:
        async with consuming(intake, lead) as out:
            await intake.accept(b'{"n":1}', 1)
            await get(out, 1)
            old_token = lead.token
            redis_srv.kill()
            redis_srv.start()
            assert isinstance(await asyncio.wait_for(out.get(), 5), Fenced)
        await until(lambda: lead.is_leader, 5, "leading again")
        assert lead.fence == 1 and lead.token != old_token
        async with consuming(intake, lead) as out:
            await intake.accept(b'{"n":2}', 2)
            assert [e.body for e in await get(out, 1)] == [b'{"n":2}']
    finally:
        await lead.stop()
