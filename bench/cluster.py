"""`python -m bench.cluster [--quick]`: three `wallboard serve` nodes on one Redis (issue 14).

One measured phase: 3 nodes x 200 screens (worker processes), 2,000 agents, 50 events/s,
webhooks spread round-robin over the nodes: event -> screen p50/p99 (the POST sent to the
marker seen on a screen, on whichever node), Redis commands per event (every command the
nodes send, the scripts' inner ones included, during the phase, over the events).
Then K leader kills (kill -9) under light traffic: the time until another node says it
leads and is ready (p50/max), and the screens of each killed node coming back on another
node with ?epoch&seq: how many resumed with patches, not a snapshot. The killed node is
started again between kills. Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets
from redis import Redis

from bench.clients import Job, worker
from bench.phases import CTX, Figures
from bench.poster import _hook, caller
from bench.servers import SECRET, _spawn, _wait
from bench.wire import Conn
from tests.servers import free_port
from tests.services import postgres_server, redis_server

ROOT = Path(__file__).resolve().parent.parent
LEASE_S = 2.0


@dataclass(frozen=True)
class Plan:
    agents: int = 2000
    screens_per_node: int = 200
    rate: float = 50.0
    seconds: float = 10.0
    kills: int = 20
    resumers_per_node: int = 10


FULL = Plan()
QUICK = Plan(screens_per_node=50, seconds=4.0, kills=5)


@dataclass
class Node:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    tmp: Path
    redis_url: str
    database_url: str
    pbx_port: int
    nodes: list[Node] = field(default_factory=list)
    exts: list[str] = field(default_factory=list)

    def start(self, name: str, port: int | None = None) -> Node:
        port = port or free_port()
        env = {
            "WALLBOARD_CONFIG": str(ROOT / "config.toml"),
            "WALLBOARD_SERVER_PORT": str(port),
            "WALLBOARD_SERVER_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "WALLBOARD_PBX_BASE_URL": f"http://127.0.0.1:{self.pbx_port}",
            "WALLBOARD_PBX_API_KEY": "sim-api-key",
            "WALLBOARD_STORAGE_PATH": str(self.tmp / name / "wallboard.db"),
            "WALLBOARD_STORAGE_DATABASE_URL": self.database_url,
            "WALLBOARD_CLUSTER_REDIS_URL": self.redis_url,
            "WALLBOARD_CLUSTER_NODE_ID": name,
            "WALLBOARD_CLUSTER_LEASE_SECONDS": str(LEASE_S),
            "WALLBOARD_AUTH_MODE": "none",
            "WALLBOARD_WEBHOOK_SECRET": SECRET,
            "WALLBOARD_WEBHOOK_REGISTER": "false",  # the bench posts the webhooks itself
            "WALLBOARD_SERVER_ALLOW_MISSING_ORIGIN": "true",
        }
        (self.tmp / name).mkdir(exist_ok=True)
        log = self.tmp / f"{name}-{port}.log"
        node = Node(name, port, _spawn(["wallboard.cli", "serve"], env, log), log)
        _wait(node.proc, node.url + "/healthz", log)
        self.nodes = [n for n in self.nodes if n.name != name] + [node]
        self.nodes.sort(key=lambda n: n.name)
        return node

    def role(self, node: Node) -> tuple[str, bool] | None:
        try:
            said = httpx.get(node.url + "/readyz", timeout=2).json()
        except (httpx.HTTPError, ValueError):
            return None
        return said["role"], bool(said["ready"])

    def leader(self, timeout: float = 30.0, poll: float = 0.02) -> Node:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node in self.nodes:
                if node.proc.poll() is None and self.role(node) == ("leader", True):
                    return node
            time.sleep(poll)
        raise RuntimeError("no leader")

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc.poll() is None:
                node.proc.terminate()
        for node in self.nodes:
            try:
                node.proc.wait(10)
            except subprocess.TimeoutExpired:
                node.proc.kill()


@contextlib.contextmanager
def cluster(agents: int) -> Iterator[Cluster]:
    tmp = Path(tempfile.mkdtemp(prefix="wallboard-bench-cluster-"))
    pbx_port = free_port()
    pbx = _spawn(["bench.pbx", "--port", str(pbx_port), "--agents", str(agents)], {}, tmp / "pbx.log")
    try:
        with redis_server(appendonly=True) as redis, postgres_server() as pg:
            _wait(pbx, f"http://127.0.0.1:{pbx_port}/_sim/stats", tmp / "pbx.log")
            made = Cluster(tmp, redis.url, pg.url, pbx_port)
            try:
                for name in ("n1", "n2", "n3"):
                    made.start(name)
                leader = made.leader(60)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:  # every node's screens show the polled agents
                    states = [httpx.get(n.url + "/api/state", timeout=30).json() for n in made.nodes]
                    idle = [[a["ext"] for a in s["agents"] if a["state"] == "idle"] for s in states]
                    if min(len(i) for i in idle) >= agents * 0.9:
                        made.exts = idle[made.nodes.index(leader)]
                        break
                    time.sleep(0.3)
                settle(made)
                yield made
            finally:
                made.stop()
    finally:
        pbx.terminate()
        pbx.wait(10)


def settle(made: Cluster) -> None:
    """Until the lease stays where the tenants' assignment wants it (a node that joined late
    takes its share over a lease after it is seen): no hand-over inside a measurement."""
    leader, since = made.leader(60), time.monotonic()
    while time.monotonic() - since < 3 * LEASE_S:
        time.sleep(0.2)
        now = made.leader(60)
        if now is not leader:
            leader, since = now, time.monotonic()


class Spread:
    """The PBX's side: each webhook to the next node, timed; the ring told to the PBX."""

    def __init__(self, made: Cluster, first_id: int) -> None:
        self.made = made
        self.next_id = first_id
        self.sent: dict[int, int] = {}
        self.statuses: dict[int, int] = {}
        self._free = {n.port: [Conn("127.0.0.1", n.port) for _ in range(2)] for n in made.nodes}
        self._turn = itertools.count()
        self._pbx = Conn("127.0.0.1", made.pbx_port)
        self._pbx_lock = asyncio.Lock()

    async def one(self, live: list[Node]) -> None:
        n = self.next_id
        self.next_id += 1
        call_id, ext = f"bk{n}", self.made.exts[n % len(self.made.exts)]
        node = live[next(self._turn) % len(live)]
        free = self._free.setdefault(node.port, [])  # a restarted node has a new port
        conn = free.pop() if free else Conn("127.0.0.1", node.port)
        try:
            self.sent[n] = time.time_ns()
            status, _, _ = await conn.request("POST", f"/hooks/pbx/{SECRET}", _hook(call_id, ext, caller(n)))
            self.statuses[n] = status
        except OSError:
            self.statuses[n] = 0
            conn = Conn("127.0.0.1", node.port)
        finally:
            self._free[node.port].append(conn)
        async with self._pbx_lock:
            await self._pbx.request("POST", "/_bench/ring", orjson.dumps([{"ext": ext, "call_id": call_id,
                                                                            "from": caller(n)}]))

    async def paced(self, rate: float, seconds: float, live: list[Node]) -> None:
        start = time.monotonic() + 0.05

        async def at(t: float) -> None:
            await asyncio.sleep(max(0.0, t - time.monotonic()))
            await self.one(live)

        await asyncio.gather(*(at(start + i / rate) for i in range(int(rate * seconds))))

    async def close(self) -> None:
        for conns in self._free.values():
            for conn in conns:
                await conn.close()
        await self._pbx.close()


def commands(redis: Redis) -> int:
    stats: dict[str, dict[str, Any]] = redis.info("commandstats")  # type: ignore[assignment]
    return sum(int(v["calls"]) for v in stats.values())


def measured_phase(made: Cluster, plan: Plan, redis: Redis, first_id: int = 1) -> tuple[Figures, float]:
    ready, results = CTX.Queue(), CTX.Queue()
    go, stop = CTX.Event(), CTX.Event()
    jobs = [Job("screen", node.port, plan.screens_per_node, seed=i) for i, node in enumerate(made.nodes)]
    procs = [CTX.Process(target=worker, args=(j, ready, go, stop, results), daemon=True) for j in jobs]
    for p in procs:
        p.start()
    connected = sum(ready.get(timeout=300) for _ in procs)
    time.sleep(1.0)
    before = commands(redis)
    t0 = time.monotonic()
    go.set()
    spread = Spread(made, first_id)

    async def post() -> None:
        try:
            await spread.paced(plan.rate, plan.seconds, made.nodes)
        finally:
            await spread.close()

    asyncio.run(post())
    time.sleep(1.0)
    stop.set()
    used = commands(redis) - before
    outs = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(10)
    fig = Figures("cluster", plan.agents, connected, events=len(spread.sent), seconds=time.monotonic() - t0,
                  accepted=sum(1 for s in spread.statuses.values() if s == 200))
    pairs = 0
    for o in outs:
        fig.errors += o["errors"]
        for k, t in zip(o["ids"], o["times"], strict=True):
            if k in spread.sent:
                fig.latencies_ms.append((t - spread.sent[k]) / 1e6)
                pairs += 1
    fig.seen = pairs / (connected * len(spread.sent)) if connected and spread.sent else 0.0
    return fig, used / max(1, len(spread.sent))


class Resumer:
    """A screen that, when its node goes, comes back on another with ?epoch&seq (as socket.js)."""

    def __init__(self, made: Cluster, node: Node) -> None:
        self.made, self.node = made, node
        self.epoch, self.seq = "", -1
        self.resumes = 0
        self.snapshot_free = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        resuming = False
        while True:
            query = f"?epoch={self.epoch}&seq={self.seq}" if resuming else ""
            try:
                async with websockets.connect(self.node.url.replace("http", "ws") + "/ws" + query,
                                              max_size=None, open_timeout=10) as ws:
                    first = True
                    async for raw in ws:
                        message = orjson.loads(raw)
                        kind = message.get("type")
                        if first and resuming and kind in ("snapshot", "patch", "ping"):
                            self.resumes += 1
                            self.snapshot_free += kind != "snapshot"
                            first = False
                        elif kind in ("snapshot", "patch"):
                            first = False
                        if kind == "snapshot":
                            self.epoch, self.seq = message["epoch"], message["seq"]
                        elif kind == "patch":
                            self.seq = message["seq"]
            except (OSError, websockets.ConnectionClosed, websockets.InvalidHandshake, TimeoutError):
                pass
            await asyncio.sleep(random.uniform(0.05, 0.3))  # socket.js's jitter
            alive = [n for n in self.made.nodes if n.proc.poll() is None]
            if self.node not in alive and alive:
                self.node = random.choice(alive)
            resuming = self.seq >= 0

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def failovers(made: Cluster, plan: Plan) -> tuple[list[float], int, int]:
    resumers = [Resumer(made, node) for node in made.nodes for _ in range(plan.resumers_per_node)]
    spread = Spread(made, 10_000_000)
    took: list[float] = []
    stop = asyncio.Event()

    async def traffic() -> None:
        while not stop.is_set():
            live = [n for n in made.nodes if n.proc.poll() is None]
            with contextlib.suppress(OSError):
                await spread.one(live)
            await asyncio.sleep(0.1)

    background = asyncio.create_task(traffic())
    try:
        for _ in range(plan.kills):
            leader = await asyncio.to_thread(made.leader, 30)
            await asyncio.sleep(1.0)  # patches flow to the screens of every node
            leader.proc.kill()
            leader.proc.wait()
            killed = time.monotonic()
            await asyncio.to_thread(made.leader, 30, 0.01)
            took.append(time.monotonic() - killed)
            await asyncio.to_thread(made.start, leader.name)
        await asyncio.sleep(2.0)  # the last killed node's screens are back
    finally:
        stop.set()
        await background
        await spread.close()
        for r in resumers:
            await r.close()
    return took, sum(r.snapshot_free for r in resumers), sum(r.resumes for r in resumers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--kills", type=int)
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.kills is not None:
        plan = Plan(**{**plan.__dict__, "kills": args.kills})
    print(f"# cluster: 3 nodes x {plan.screens_per_node} screens, {plan.agents} agents, {plan.rate:.0f} events/s "
          f"for {plan.seconds:.0f} s, webhooks round-robin over the nodes; lease {LEASE_S} s; "
          f"{os.cpu_count()} cores shared by everything", flush=True)
    with cluster(plan.agents) as made:
        redis = Redis.from_url(made.redis_url)
        fig, per_event = measured_phase(made, plan, redis)
        print(f"event -> screen: p50 {fig.pct(0.5):.1f} ms, p99 {fig.pct(0.99):.1f} ms, "
              f"max {max(fig.latencies_ms, default=0):.1f} ms; "
              f"seen {100 * fig.seen:.1f}% of (screen, event); accepted {fig.accepted}/{fig.events}; "
              f"Redis commands per event {per_event:.1f} (all nodes, scripts' inner commands included)"
              + (f"; errors {fig.errors[:2]}" if fig.errors else ""), flush=True)
        took, free, resumes = asyncio.run(failovers(made, plan))
        if took:
            print(f"failover over {len(took)} leader kills (kill -9 to another node ready as leader): "
                  f"p50 {1000 * statistics.median(took):.0f} ms, max {1000 * max(took):.0f} ms "
                  f"(lease {LEASE_S:.0f} s)", flush=True)
        print(f"resumes on another node: {free} of {resumes} without a snapshot", flush=True)
        redis.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
