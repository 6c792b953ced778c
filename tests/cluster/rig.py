"""Several `wallboard serve` processes on one Redis, for end-to-end tests and the benchmark.

`Rig` starts the simulator, a round-robin front for the PBX's webhooks (nginx's part:
`server.public_url` is the front, so registrations made by whichever node leads point
at every node) and the nodes, each with its own storage dir. Screens are plain
WebSocket clients that record every message.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets
from starlette.requests import Request
from starlette.responses import Response

from tests.servers import Server, free_port, listener, port_of, serving, until, wallboard_server
from tests.services import RedisServer
from wallboard.cluster.members import assign

SECRET = "cluster-test-webhook-secret"
LEASE_S = 3.0  # a loaded 2-core machine stalls a process for a second now and then
POLL_S = 1.0


class Front:
    """The load balancer in front of the nodes, for the PBX's webhooks: each POST to the
    next node that answers."""

    def __init__(self) -> None:
        self.nodes: list[str] = []
        self.sent: dict[str, int] = {}
        self._turn = itertools.count()
        self._http = httpx.AsyncClient(timeout=5)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        answer: Response = Response("no node answered", status_code=502)
        for _ in range(len(self.nodes)):
            node = self.nodes[next(self._turn) % len(self.nodes)]
            try:
                got = await self._http.request(request.method, node + scope["path"], content=body,
                                               headers={"content-type": request.headers.get("content-type", "")})
            except httpx.HTTPError:
                continue
            self.sent[node] = self.sent.get(node, 0) + 1
            answer = Response(got.content, status_code=got.status_code,
                              media_type=got.headers.get("content-type"))
            break
        await answer(scope, receive, send)

    async def close(self) -> None:
        await self._http.aclose()


@dataclass
class Node:
    name: str
    server: Server
    stack: contextlib.ExitStack

    @property
    def url(self) -> str:
        return self.server.url

    def alive(self) -> bool:
        return self.server.proc.poll() is None


@dataclass
class Rig:
    tmp: Path
    redis: RedisServer
    database_url: str
    sim_url: str
    front_url: str
    front: Front
    nodes: list[Node] = field(default_factory=list)
    tenants: int = 0

    def start_node(self, name: str, **overrides: str) -> Node:
        stack = contextlib.ExitStack()
        home = self.tmp / name
        home.mkdir(exist_ok=True)
        config = {"cluster_redis_url": self.redis.url, "cluster_node_id": name,
                  "cluster_lease_seconds": str(LEASE_S), "storage_database_url": self.database_url,
                  "webhook_secret": SECRET, "auth_mode": "none", "server_public_url": self.front_url,
                  **overrides}
        server = stack.enter_context(wallboard_server(home, self.sim_url, port=None, **config))
        node = Node(name, server, stack)
        self.nodes.append(node)
        self.front.nodes.append(server.url)
        return node

    def kill(self, node: Node) -> None:
        node.server.proc.kill()
        node.server.proc.wait()
        self.front.nodes.remove(node.url)

    async def start_nodes(self, *names: str, **overrides: str) -> None:
        """Started side by side (each waits for its /healthz in a thread of its own)."""
        await asyncio.gather(*(asyncio.to_thread(self.start_node, name, **overrides) for name in names))
        self.nodes.sort(key=lambda node: node.name)

    def stop_all(self) -> None:
        for node in self.nodes:  # all told at once, then each waited for
            if node.alive():
                node.server.proc.terminate()
        for node in self.nodes:
            node.stack.close()

    async def readyz(self, node: Node) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=2) as http:
            return dict((await http.get(node.url + "/readyz")).json())

    async def roles(self) -> dict[str, Any]:
        """node -> its role as /readyz says (None: no answer)."""
        out: dict[str, Any] = {}
        for node in self.nodes:
            if not node.alive():
                continue
            try:
                out[node.name] = (await self.readyz(node))["role"]
            except (httpx.HTTPError, ValueError):
                out[node.name] = None
        return out

    async def settled_leader(self, within: float = 20.0) -> Node:
        """The leader once it is the node the tenant is assigned to (members.py): no hand-over
        to come while every node lives."""
        alive = [n.name for n in self.nodes if n.alive()]
        wanted = assign(["default"], alive)["default"]
        deadline = time.monotonic() + within
        while (leader := await self.leader(within)).name != wanted:
            assert time.monotonic() < deadline, f"{leader.name} leads, not {wanted}"
            await asyncio.sleep(0.1)
        return leader

    async def leader(self, within: float = 15.0, *, besides: Node | None = None) -> Node:
        """The one node that says it leads (and is ready), other than `besides`."""
        async def one() -> Node | None:
            leaders = []
            for node in self.nodes:
                if node is besides or not node.alive():
                    continue
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    said = await self.readyz(node)
                    if said["role"] == "leader" and said["ready"]:
                        leaders.append(node)
            return leaders[0] if len(leaders) == 1 else None

        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = await one()
            if found is not None:
                return found
            await asyncio.sleep(0.05)
        raise AssertionError(f"no single leader within {within} s: {await self.roles()}")


@contextlib.asynccontextmanager
async def front() -> AsyncIterator[tuple[Front, str]]:
    spread = Front()
    sock = listener()
    try:
        async with serving(spread, sock) as url:
            yield spread, url
    finally:
        await spread.close()


@contextlib.contextmanager
def nodes_of(rig: Rig) -> Iterator[Rig]:
    try:
        yield rig
    finally:
        rig.stop_all()


class Screen:
    """A screen on one node: every message it got, in order, kept by a task."""

    def __init__(self, node: Node, path: str = "/ws", *, epoch: str | None = None, seq: int | None = None) -> None:
        self.node = node
        query = f"?epoch={epoch}&seq={seq}" if epoch is not None else ""
        self.url = node.url.replace("http://", "ws://") + path + query
        self.messages: list[dict[str, Any]] = []
        self.closed = asyncio.Event()
        self._task = asyncio.create_task(self._run())
        self._opened = asyncio.Event()

    async def _run(self) -> None:
        try:
            async with websockets.connect(self.url, open_timeout=5, max_size=2**24) as ws:
                self._opened.set()
                async for raw in ws:
                    self.messages.append(orjson.loads(raw))
        except (OSError, websockets.ConnectionClosed, websockets.InvalidHandshake, TimeoutError):
            pass
        finally:
            self.closed.set()

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("type") == kind]

    @property
    def seq(self) -> int:
        """The last seq this screen holds."""
        last = -1
        for m in self.messages:
            if m.get("type") in ("snapshot", "patch"):
                last = m["seq"]
        return last

    @property
    def epoch(self) -> str:
        return str(self.of("snapshot")[-1]["epoch"])

    async def until_seq(self, seq: int, within: float = 15.0) -> None:
        await until(lambda: self.seq >= seq, within, f"{self.url} to reach seq {seq} (at {self.seq})")

    def line(self, *, resumed_at: int | None = None) -> list[int]:
        """The seqs of its patches; asserts one snapshot first (none when resumed) and no gap."""
        kinds = [m["type"] for m in self.messages if m.get("type") in ("snapshot", "patch")]
        if resumed_at is None:
            assert kinds and kinds[0] == "snapshot", kinds[:3]
            assert kinds.count("snapshot") == 1, (f"{self.url}: snapshots at "
                                                  f"{[(m['epoch'], m['seq']) for m in self.of('snapshot')]}")
            last = self.messages[[m.get("type") for m in self.messages].index("snapshot")]["seq"]
        else:
            assert "snapshot" not in kinds, f"{self.url}: a snapshot on resume"
            last = resumed_at
        seqs = []
        for m in self.messages:
            if m.get("type") == "patch":
                assert m["seq"] == last + 1, f"{self.url}: patch {m['seq']} after {last}"
                last = m["seq"]
                seqs.append(last)
        return seqs


def same_patches(*screens: Screen) -> None:
    """Every seq two screens both got is the same patch (one line, written by one leader at a time)."""
    seen: dict[int, Any] = {}
    for screen in screens:
        for m in screen.of("patch"):
            if m["seq"] in seen:
                assert seen[m["seq"]] == m["ops"], f"seq {m['seq']} differs between screens"
            seen[m["seq"]] = m["ops"]


__all__ = ["LEASE_S", "POLL_S", "SECRET", "Front", "Node", "Rig", "Screen", "free_port", "front", "nodes_of",
           "port_of", "same_patches"]
