"""Tenants split between two `wallboard serve` processes (issue 15 in the cluster): each
node leads its share of the tenants' leases, and when one dies the other takes its
tenants over; a screen of a moved tenant sees no gap and no snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.cluster.rig import LEASE_S, Rig, Screen, front, nodes_of
from tests.servers import sim_server
from tests.services import PostgresServer, postgres_server, redis_server

pytestmark = pytest.mark.slow
TENANTS = ("t1", "t2", "t3", "t4")


def config(tmp: Path) -> Path:
    text = "".join(f'[[tenants]]\nid = "{t}"\nname = "Call center {t}"\napi_key = "sim-api-key-{t}"\n'
                   for t in TENANTS)
    path = tmp / "tenants.toml"
    path.write_text(text)
    return path


@pytest.fixture
def pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
async def rig(tmp_path: Path, pg: PostgresServer) -> AsyncIterator[Rig]:
    with redis_server() as redis_srv, \
            sim_server(tmp_path, "--tenants", str(len(TENANTS)), "--agents", "5", "--seed", "15", "--rate", "90",
                       "--profile", "flat") as sim:
        async with front() as (spread, front_url):
            made = Rig(tmp_path, redis_srv, pg.url, sim.url, front_url, spread)
            with nodes_of(made):
                await made.start_nodes("n1", "n2", config=str(config(tmp_path)))
                yield made


async def test_tenants_split_between_two_nodes_and_move_when_one_dies(rig: Rig) -> None:
    async def split() -> dict[str, list[str]] | None:
        roles = await rig.roles()
        led = [t for node in roles.values() for t in node or []]
        if sorted(led) == sorted(TENANTS) and all(len(t or []) == len(TENANTS) // 2 for t in roles.values()):
            return roles
        return None

    roles: dict[str, list[str]] | None = None

    async def settled() -> bool:
        nonlocal roles
        roles = await split()
        return roles is not None

    deadline = asyncio.get_running_loop().time() + 20
    while not await settled():
        assert asyncio.get_running_loop().time() < deadline, f"never split: {await rig.roles()}"
        await asyncio.sleep(0.1)
    assert roles is not None
    n1, n2 = rig.nodes
    moving = roles["n1"][0]  # led by n1, watched on n2
    screen = Screen(n2, f"/t/{moving}/ws")
    await screen.until_seq(0)
    await screen.until_seq(screen.seq + 2)

    rig.kill(n1)
    deadline = asyncio.get_running_loop().time() + LEASE_S + 10
    while sorted((await rig.roles()).get("n2") or []) != sorted(TENANTS):
        assert asyncio.get_running_loop().time() < deadline, f"n2 never took over: {await rig.roles()}"
        await asyncio.sleep(0.1)
    await screen.until_seq(screen.seq + 3, within=15)
    screen.line()  # one snapshot, no gap: the tenant moved and its screen noticed nothing
    await screen.close()
