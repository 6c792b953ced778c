"""Tenants spread over the live nodes: each about its share, and few move when one comes or goes."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from redis.asyncio import Redis

from wallboard.cluster.members import Membership, assign

TENANTS = [f"t{i}" for i in range(1, 41)]


@pytest.mark.parametrize("nodes", [1, 2, 3, 5])
def test_each_node_takes_about_its_share(nodes: int) -> None:
    names = [f"n{i}" for i in range(nodes)]
    load = Counter(assign(TENANTS, names).values())
    assert set(load) <= set(names) and sum(load.values()) == len(TENANTS)
    assert max(load.values()) <= math.ceil(len(TENANTS) / nodes)


def test_every_node_computes_the_same() -> None:
    assert assign(TENANTS, ["a", "b", "c"]) == assign(list(reversed(TENANTS)), ["c", "a", "b"])


def test_a_node_leaving_moves_its_share_and_little_else() -> None:
    before = assign(TENANTS, ["n1", "n2", "n3"])
    after = assign(TENANTS, ["n1", "n2"])
    moved = [t for t in TENANTS if before[t] != after[t]]
    theirs = [t for t in TENANTS if before[t] == "n3"]
    assert set(theirs) <= set(moved)
    assert len(moved) <= len(theirs) + len(TENANTS) // 4


def test_two_tenants_on_two_nodes_split() -> None:
    assert sorted(Counter(assign(["acme", "globex"], ["a", "b"]).values()).values()) == [1, 1]


async def test_nodes_see_each_other_and_a_leaving_one_goes(client: Redis) -> None:
    a = Membership(client, "a", ["t1", "t2"], lease_seconds=3)
    b = Membership(client, "b", ["t1", "t2"], lease_seconds=3)
    await a.beat()
    await b.beat()
    await a.beat()
    assert a.nodes == b.nodes == ["a", "b"]
    assert a.assignment == b.assignment
    assert sum(a.prefers(t) for t in ("t1", "t2")) == 1 and sum(b.prefers(t) for t in ("t1", "t2")) == 1
    await b.beat(leaving=True)
    await a.beat()
    assert a.nodes == ["a"] and a.prefers("t1") and a.prefers("t2")
