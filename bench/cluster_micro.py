"""Cluster foundations against a real redis-server: what a patch and a webhook cost in Redis
commands, publish → other node latency, resume from the stream, and lease failover.

`python -m bench.cluster_micro [--patches N] [--rate R] [--failovers K] [--lease S]`

Prints figures; not a test. Redis commands come from INFO commandstats before/after, so
they count the commands inside the Lua scripts too; "round trips" are the commands the
nodes' client sent (EVALSHA, XREAD, XADD, ...), counted on the client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import statistics
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from tests.services import redis_server
from wallboard.audience import Audience
from wallboard.bus import Published
from wallboard.cluster.intake import Intake
from wallboard.cluster.lease import Leadership
from wallboard.cluster.redis_bus import RedisBus
from wallboard.cluster.redis_client import connect

# A patch of a busy minute: a few agents and calls changed, per audience.
PAYLOAD = b'{"type":"patch","seq":%d,"ops":[["upd","agents","1042",{"state":"talking","since":1764306000000}],' \
          b'["add","calls","c-%d",{"from":"0901234567","to":"1042","state":"answered"}]]}'


def _patch(seq: int, epoch: str = "bench") -> Published:
    return Published(epoch, seq, {audience: PAYLOAD % (seq, seq) for audience in Audience})


def _counted(url: str) -> Redis:
    """A client that counts the commands it sends (in `sent`, by name)."""
    client = connect(url)
    sent: dict[str, int] = {}
    send = client.execute_command

    async def execute_command(*args: Any, **options: Any) -> Any:
        sent["sent"] = sent.get("sent", 0) + 1
        return await send(*args, **options)

    client.execute_command = execute_command  # type: ignore[method-assign]
    client.sent = sent  # type: ignore[attr-defined]
    return client


async def _commandstats(client: Redis, counted: Redis) -> dict[str, int]:
    """Calls per command in Redis (the scripts' inner commands included), and 'sent' by `counted`."""
    stats = await client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    return {**calls, "sent": counted.sent.get("sent", 0)}  # type: ignore[attr-defined]


def _per(before: dict[str, int], after: dict[str, int], n: int) -> tuple[float, float, dict[str, float]]:
    """(commands, round trips, by command) per unit; the INFO calls themselves left out."""
    names = (set(before) | set(after)) - {"sent", "info"}
    used = {name: (after.get(name, 0) - before.get(name, 0)) / n for name in names}
    sent = (after["sent"] - before["sent"]) / n
    return round(sum(used.values()), 2), round(sent, 2), {k: round(v, 2) for k, v in sorted(used.items()) if v > 0}


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


@contextlib.asynccontextmanager
async def _node(client: Redis, name: str, lease: float) -> AsyncIterator[tuple[Leadership, RedisBus]]:
    lead = Leadership(client, "bench", name, lease)
    bus = RedisBus(client, "bench", lead, block_ms=1000)
    await bus.start()
    try:
        yield lead, bus
    finally:
        await bus.stop()
        await lead.stop()


async def patches(url: str, n: int, rate: float) -> dict[str, Any]:
    """Three nodes: the leader publishes `n` patches at `rate`/s, two followers read them."""
    client, stats_client = _counted(url), connect(url)
    try:
        async with _node(client, "n1", 5.0) as (lead, leader_bus), _node(client, "n2", 5.0) as (_, b2), \
                _node(client, "n3", 5.0) as (_, b3):
            await lead.start()
            await asyncio.wait_for(lead.won.wait(), 5)
            await leader_bus.publish(_patch(0))  # the line exists; the readers are at its head
            sent: dict[int, float] = {}
            seen: list[float] = []

            async def follow(bus: RedisBus) -> None:
                async with bus.subscribe() as items:
                    async for item in items:
                        seen.append(time.perf_counter() - sent[item.seq])
                        if item.seq == n:
                            return

            followers = [asyncio.create_task(follow(b)) for b in (b2, b3)]
            await asyncio.sleep(0.05)
            before = await _commandstats(stats_client, client)
            publish_ms: list[float] = []
            started = time.perf_counter()
            for seq in range(1, n + 1):
                sent[seq] = time.perf_counter()
                await leader_bus.publish(_patch(seq))
                publish_ms.append((time.perf_counter() - sent[seq]) * 1000)
                pause = started + seq / rate - time.perf_counter()
                if pause > 0:
                    await asyncio.sleep(pause)
            await asyncio.wait_for(asyncio.gather(*followers), 10)
            after = await _commandstats(stats_client, client)
            commands, sent_per_patch, per_patch = _per(before, after, n)
            resume: list[float] = []
            late = RedisBus(client, "bench", lead, history=1)
            for _ in range(50):
                t = time.perf_counter()
                got = await late.since_async("bench", n - 100)
                resume.append((time.perf_counter() - t) * 1000)
                assert got is not None and len(got) == 100
            return {
                "patches": n, "rate_per_s": rate, "nodes": 3,
                "redis_commands_per_patch": commands,
                "round_trips_per_patch": sent_per_patch,
                "by_command": per_patch,
                "publish_ms_p50": round(statistics.median(publish_ms), 3),
                "publish_ms_p99": round(_pct(publish_ms, 99), 3),
                "to_other_node_ms_p50": round(statistics.median(seen) * 1000, 3),
                "to_other_node_ms_p99": round(_pct(seen, 99) * 1000, 3),
                "resume_100_patches_ms_p50": round(statistics.median(resume), 3),
            }
    finally:
        await client.aclose()
        await stats_client.aclose()


async def webhooks(url: str, n: int, batch: int) -> dict[str, Any]:
    """`n` webhooks accepted on a node and taken by the leader `batch` at a time, each batch
    applied as one patch that acknowledges its events (an engine tick)."""
    client, stats_client = _counted(url), connect(url)
    try:
        async with _node(client, "w1", 5.0) as (lead, bus):
            await lead.start()
            await asyncio.wait_for(lead.won.wait(), 5)
            intake = Intake(client, "bench")
            head = await bus.head()
            epoch, seq = head if head else ("bench", 0)
            before = await _commandstats(stats_client, client)
            accept_ms: list[float] = []
            batches = aiter(intake.batches(lead, count=batch, block_ms=1000))
            for i in range(0, n, batch):
                for j in range(i, i + batch):
                    t = time.perf_counter()
                    await intake.accept(b'{"state":"answered","call_id":"c%d"}' % j, int(time.time() * 1000))
                    accept_ms.append((time.perf_counter() - t) * 1000)
                events = await anext(batches)
                assert len(events) == batch
                seq += 1
                await bus.publish(_patch(seq, epoch), acks=[event.id for event in events])
            await batches.aclose()  # type: ignore[attr-defined]
            after = await _commandstats(stats_client, client)
            commands, sent_per_event, per_event = _per(before, after, n)
            return {
                "webhooks": n, "events_per_patch": batch,
                "redis_commands_per_event": commands,
                "round_trips_per_event": sent_per_event,
                "by_command": per_event,
                "accept_ms_p50": round(statistics.median(accept_ms), 3),
                "accept_ms_p99": round(_pct(accept_ms, 99), 3),
            }
    finally:
        await client.aclose()
        await stats_client.aclose()


async def failovers(url: str, rounds: int, lease: float) -> dict[str, Any]:
    """The leader stops renewing (a frozen or killed process, not a clean stop): how long
    until another node of three leads."""
    client = connect(url)
    leads = [Leadership(client, "failover", f"f{i}", lease) for i in range(3)]
    took: list[float] = []
    try:
        for lead in leads:
            await lead.start()
        for _ in range(rounds):
            await _wait_for(lambda: sum(lead.is_leader for lead in leads) == 1, 3 * lease)
            leader = next(lead for lead in leads if lead.is_leader)
            assert leader._task is not None
            leader._task.cancel()  # frozen: no renewal, no release
            with contextlib.suppress(asyncio.CancelledError):
                await leader._task
            stopped = time.perf_counter()
            others = [lead for lead in leads if lead is not leader]
            await _wait_for(lambda: any(lead.is_leader for lead in others), 3 * lease,  # noqa: B023
                            interval=0.001)
            took.append(time.perf_counter() - stopped)
            leader.demote("bench: frozen")
            leader._task = None
            await leader.start()  # it comes back and contends again
        return {"lease_s": lease, "rounds": rounds, "failover_ms_p50": round(statistics.median(took) * 1000),
                "failover_ms_max": round(max(took) * 1000), "failover_ms_min": round(min(took) * 1000)}
    finally:
        for lead in leads:
            await lead.stop()
        await client.aclose()


async def _wait_for(check: Any, within: float, interval: float = 0.005) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("bench: condition not met")
        await asyncio.sleep(interval)


async def main(args: argparse.Namespace) -> None:
    with redis_server() as srv:
        print(f"redis-server {srv.url} (no persistence)")
        for name, figures in (("patches", await patches(srv.url, args.patches, args.rate)),
                              ("webhooks, one per patch", await webhooks(srv.url, args.patches // 4, 1)),
                              ("webhooks, ten per patch", await webhooks(srv.url, args.patches // 4, 10)),
                              ("failover", await failovers(srv.url, args.failovers, args.lease))):
            print(f"\n[{name}]")
            for key, value in figures.items():
                print(f"  {key}: {value}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patches", type=int, default=2000)
    parser.add_argument("--rate", type=float, default=200.0, help="patches per second")
    parser.add_argument("--failovers", type=int, default=20)
    parser.add_argument("--lease", type=float, default=1.0, help="lease seconds for the failover rounds")
    if shutil.which("redis-server") is None:
        sys.exit("bench.cluster_micro needs redis-server (Debian package 'redis-server')")
    asyncio.run(main(parser.parse_args()))
