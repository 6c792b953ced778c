"""The lease against a real redis-server: one leader per scope, failover, fencing."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.servers import until
from tests.services import RedisServer
from wallboard.audience import Audience
from wallboard.bus import Published
from wallboard.cluster.lease import Leadership
from wallboard.cluster.redis_bus import Fenced, RedisBus

LEASE = 1.0


@contextlib.asynccontextmanager
async def nodes(client: Redis, *names: str, scope: str = "acme",
                lease: float = LEASE) -> AsyncIterator[list[Leadership]]:
    leads = [Leadership(client, scope, name, lease) for name in names]
    for lead in leads:
        await lead.start()
    try:
        yield leads
    finally:
        for lead in leads:
            await lead.stop()


async def freeze(lead: Leadership) -> None:
    """What a SIGSTOPped process looks like from outside: no renewals, nothing released,
    and it still believes it holds the fence it won."""
    assert lead._task is not None
    lead._task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await lead._task
    lead._task = None


async def test_one_leader_among_contenders(client: Redis) -> None:
    async with nodes(client, "a", "b", "c") as leads:
        await until(lambda: any(lead.is_leader for lead in leads), 3, "a leader")
        deadline = time.monotonic() + 2 * LEASE  # several renewals: never two at once
        while time.monotonic() < deadline:
            assert sum(lead.is_leader for lead in leads) == 1
            await asyncio.sleep(0.01)
        leader = next(lead for lead in leads if lead.is_leader)
        assert leader.won.is_set() and not leader.lost.is_set()
        assert all(lead.lost.is_set() for lead in leads if lead is not leader)
        assert await client.get("wb:{acme}:lease") == (leader.token or "").encode()
        assert (leader.token or "").startswith(f"{leader.node} {leader.fence} ")


async def test_scopes_have_their_own_leaders(client: Redis) -> None:
    async with nodes(client, "a", scope="acme") as (a,), nodes(client, "a", scope="globex") as (g,):
        await until(lambda: a.is_leader and g.is_leader, 3, "both scopes led")
        assert a.fence == g.fence == 1  # one fence counter per scope


async def test_failover_within_the_lease_after_the_leader_stops_renewing(client: Redis) -> None:
    async with nodes(client, "a", "b") as (a, b):
        await until(lambda: a.is_leader or b.is_leader, 3, "a leader")
        old, new = (a, b) if a.is_leader else (b, a)
        fence = old.fence
        await freeze(old)
        stopped = time.monotonic()
        await asyncio.wait_for(new.won.wait(), LEASE + 1)
        took = time.monotonic() - stopped
        print(f"\nfailover after the leader stopped renewing: {took * 1000:.0f} ms (lease {LEASE * 1000:.0f} ms)")
        assert took <= LEASE + 0.3
        assert new.fence == (fence or 0) + 1


async def test_a_leader_that_stops_hands_over_at_once(client: Redis) -> None:
    async with nodes(client, "a", "b") as (a, b):
        await until(lambda: a.is_leader or b.is_leader, 3, "a leader")
        old, new = (a, b) if a.is_leader else (b, a)
        await old.stop()
        stopped = time.monotonic()
        await asyncio.wait_for(new.won.wait(), new.renew_every + 0.5)
        print(f"\nhand-over after a clean stop: {(time.monotonic() - stopped) * 1000:.0f} ms")
        assert old.lost.is_set() and old.token is None


async def test_a_leader_knows_within_one_renewal_that_the_lease_is_gone(client: Redis) -> None:
    async with nodes(client, "a") as (a,):
        await asyncio.wait_for(a.won.wait(), 3)
        await client.set("wb:{acme}:lease", "someone-else 99", px=60_000)
        gone = time.monotonic()
        await asyncio.wait_for(a.lost.wait(), a.renew_every + 0.3)
        assert time.monotonic() - gone <= a.renew_every + 0.3
        assert not a.is_leader


async def test_redis_down_the_leader_steps_down_by_its_own_clock(redis_srv: RedisServer, client: Redis) -> None:
    async with nodes(client, "a") as (a,):
        await asyncio.wait_for(a.won.wait(), 3)
        redis_srv.kill()
        down = time.monotonic()
        await asyncio.wait_for(a.lost.wait(), LEASE + 0.5)
        assert time.monotonic() - down <= LEASE + 0.3
        redis_srv.start()  # back (empty): it leads again, with a new fence line
        await asyncio.wait_for(a.won.wait(), 5)
        assert a.fence == 1


async def test_a_frozen_leader_cannot_publish_after_losing_the_lease(client: Redis) -> None:
    async with nodes(client, "a", "b") as (a, b):
        await until(lambda: a.is_leader or b.is_leader, 3, "a leader")
        old, new = (a, b) if a.is_leader else (b, a)
        bus = RedisBus(client, "acme", old)
        await bus.start()
        await bus.publish(Published("E1", 1, {Audience.WHOLE: b'{"seq":1}'}))
        await freeze(old)
        await asyncio.wait_for(new.won.wait(), LEASE + 1)
        assert old.token is not None  # it wakes up believing it leads...
        with pytest.raises(Fenced):
            await bus.publish(Published("E1", 2, {Audience.WHOLE: b'{"seq":2}'}))
        assert old.lost.is_set() and old.token is None  # ...and is told otherwise by Redis
        entries = await client.xrange("wb:{acme}:patches")
        assert [fields[b"s"] for _, fields in entries] == [b"1"]
        await bus.stop()


async def test_a_leader_within_its_lease_is_still_refused_once_another_won(client: Redis) -> None:
    """The fence, not the clock: the same node that won again meanwhile (a newer fence) refuses
    the token of its older win."""
    async with nodes(client, "a", lease=30.0) as (a,):
        await asyncio.wait_for(a.won.wait(), 3)
        bus = RedisBus(client, "acme", a)
        await client.set("wb:{acme}:lease", f"a {(a.fence or 0) + 1} 0f0f0f0f", px=30_000)
        with pytest.raises(Fenced):
            await bus.publish(Published("E1", 1, {Audience.WHOLE: b"{}"}))
        assert not await client.exists("wb:{acme}:patches")
