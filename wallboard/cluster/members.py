"""Which node should lead which tenant: tenants spread over the live nodes.

Every node says it is alive in one sorted set (its name, scored with Redis' own clock,
so nodes' clocks do not matter) and reads who else is. From the same list of nodes and
of tenants every node computes the same assignment: each tenant goes to the node
ranked first for it by rendezvous hashing that still has room, at most
ceil(tenants / nodes) per node. A node joining or leaving moves about its share.

This is a preference, never a lock: the leases decide (lease.py). A node contends at
once for the scopes assigned to it and only after a short grace for the others, so a
tenant whose node is gone is still taken within the grace; a leader of a scope
assigned elsewhere (a node joined) hands it over once that node has been alive for a
lease. With Redis down, or before the first read, every node prefers everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import math
from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("wallboard.cluster.members")

NODES_KEY = "wb:nodes"

# KEYS: nodes. ARGV: node, ttl ms, leaving (1/0). -> {node, first seen ms}... of the live nodes
ALIVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
if ARGV[3] == '1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], now, ARGV[1])
end
local out = redis.call('ZRANGE', KEYS[1], 0, -1)
table.insert(out, tostring(now))
return out
"""


def _rank(tenant: str, node: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{tenant}\0{node}".encode(), digest_size=8).digest(), "big")


def assign(tenants: Iterable[str], nodes: Iterable[str]) -> dict[str, str]:
    """tenant -> node: rendezvous hashing with at most ceil(tenants / nodes) per node."""
    tenant_list, node_list = sorted(set(tenants)), sorted(set(nodes))
    if not node_list:
        return {}
    room = math.ceil(len(tenant_list) / len(node_list))
    load = dict.fromkeys(node_list, 0)
    out: dict[str, str] = {}
    # The tenants with the strongest first choice place first: stable as nodes come and go.
    ranked = {t: sorted(node_list, key=functools.partial(_rank, t), reverse=True) for t in tenant_list}
    for tenant in sorted(tenant_list, key=lambda t: _rank(t, ranked[t][0]), reverse=True):
        node = next(n for n in ranked[tenant] if load[n] < room)
        load[node] += 1
        out[tenant] = node
    return out


class Membership:
    """This node's presence, and the assignment of `tenants` over the live nodes."""

    def __init__(self, redis: Redis, node: str, tenants: Iterable[str], *, lease_seconds: float) -> None:
        self.node = node
        self.tenants = set(tenants)
        self.every = lease_seconds / 3
        self.ttl_ms = int(lease_seconds * 1000)
        self.nodes: list[str] = []
        self.assignment: dict[str, str] = {}
        self._since: dict[str, float] = {}  # node -> when this node first saw it alive (monotonic)
        self._alive = redis.register_script(ALIVE)
        self._task: asyncio.Task[None] | None = None

    def prefers(self, tenant: str) -> bool:
        """Should this node lead `tenant` now (True while nothing is known)?"""
        owner = self.assignment.get(tenant)
        return owner is None or owner == self.node

    def settled_owner(self, tenant: str, older_than: float) -> str | None:
        """The node assigned `tenant` when it is another one, seen alive for `older_than` s."""
        owner = self.assignment.get(tenant)
        if owner is None or owner == self.node:
            return None
        seen = self._since.get(owner)
        now = asyncio.get_running_loop().time()
        return owner if seen is not None and now - seen >= older_than else None

    def add(self, tenant: str) -> None:
        self.tenants.add(tenant)
        self.assignment = assign(self.tenants, self.nodes)

    def discard(self, tenant: str) -> None:
        self.tenants.discard(tenant)
        self.assignment = assign(self.tenants, self.nodes)

    async def beat(self, *, leaving: bool = False) -> None:
        answer = await self._alive(keys=[NODES_KEY], args=[self.node, self.ttl_ms, int(leaving)])
        nodes = sorted(n.decode() for n in answer[:-1])
        if leaving:
            return
        now = asyncio.get_running_loop().time()
        self._since = {n: self._since.get(n, now) for n in nodes}
        if nodes != self.nodes:
            log.info("nodes alive: %s", ", ".join(nodes))
        self.nodes = nodes
        self.assignment = assign(self.tenants, nodes)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="cluster:members")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(1.0):
                await self.beat(leaving=True)

    async def _run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.every):
                    await self.beat()
            except (RedisError, OSError, TimeoutError):
                self.assignment = {}  # prefer everything: the leases still decide
                self.nodes = []
            await asyncio.sleep(self.every)
