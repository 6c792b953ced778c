"""`python -m bench.tenants [--quick]`: many tenants on one wallboard process (issue 15).

One simulator process (bench/tenant_sim.py: `wallboard sim --tenants N --agents A`, every
agent logged in, no traffic of its own) and one `wallboard serve` with N `[[tenants]]`
(its webhooks registered per tenant at /hooks/pbx/{id}/{secret}). In the same run, first
with 1 tenant (the baseline), then with N:

- idle: no screens, no events. The server's CPU (polling, ticks, sweeps, the provider's
  rows) per tenant; RSS; PBX requests per tenant per minute; how the requests fall over
  each poll interval (a herd at :00 shows as a 100 ms window far above the mean); the
  TCP connections from the server to the PBX (one pool for every tenant).
- load: S screens spread over the tenants (/t/{id}/ws with the public URL as Origin),
  scripted calls on the simulator (/_sim/calls?tenant=tK, each rings one agent for 1 s:
  a ringing and a hangup webhook), so that each tenant gets `rate` webhooks a second.
  Event -> screen is from just before the POST to the simulator to the first frame on a
  screen of that tenant that shows the call (webhook or poll, whichever comes first).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench import procstat
from bench.servers import _spawn, _wait
from bench.tenant_screens import ScreensJob, marker_number, worker
from bench.wire import Conn
from tests.servers import free_port

CTX = mp.get_context("spawn")
WORKERS = 2
RING_S = 1.0  # each scripted call rings this long and is missed: two webhooks
BIN_S = 0.1  # the window in which requests are counted for the herd check
POLL_S = 2.0  # agents_interval and calls_interval, the defaults


@dataclass(frozen=True)
class Plan:
    tenants: int
    agents: int
    screens: int
    rate: float  # webhooks per second per tenant
    idle_seconds: float
    seconds: float  # load
    settle: float = 12.0  # after every tenant's first read: the first reads spread over up to 10 s
    baseline: bool = True  # the 1-tenant run first
    baseline_screens: int = 2
    ready_timeout: float = 180.0  # tenants not polled by then are reported, and the run goes on


FULL = Plan(tenants=500, agents=20, screens=1000, rate=1.0, idle_seconds=30, seconds=30)
QUICK = Plan(tenants=20, agents=20, screens=40, rate=1.0, idle_seconds=8, seconds=6, settle=4.0)


@dataclass
class Sim:
    proc: subprocess.Popen[bytes]
    port: int
    started_s: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def per_tenant(self) -> dict[str, int]:
        return dict(httpx.get(self.url + "/_sim/stats?tenant=all", timeout=30).json()["tenants"])

    def hooks(self) -> dict[str, int]:
        return dict(httpx.get(self.url + "/_sim/stats?tenant=all", timeout=30).json()["hooks"])

    def arrivals(self, since: float, until: float) -> list[float]:
        times = httpx.get(self.url + f"/_bench/arrivals?since={since}", timeout=30).json()
        return [t for t in times if t < until]


@dataclass
class Board:
    proc: subprocess.Popen[bytes]
    port: int
    tenants: list[str]
    ready_s: float
    ready: int  # tenants whose first reads were in when the run went on

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Idle:
    tenants: int
    seconds: float
    cpu_s: float
    rss_kib: int
    requests: dict[str, float]  # per tenant per minute
    arrivals: list[float]
    tcp_max: int
    tcp_last: int

    @property
    def cpu_pct(self) -> float:
        return 100 * self.cpu_s / self.seconds

    @property
    def cpu_pct_per_tenant(self) -> float:
        return self.cpu_pct / self.tenants

    def requests_mean(self) -> float:
        return statistics.mean(self.requests.values()) if self.requests else float("nan")

    @property
    def ms_per_request(self) -> float:
        """The server's CPU per PBX request: on a loaded machine a starved server makes
        fewer requests (reads time out, back off, are skipped), and this still compares."""
        total = sum(self.requests.values()) * self.seconds / 60
        return 1000 * self.cpu_s / total if total else float("nan")

    def cpu_pct_per_tenant_at(self, requests_per_min: float) -> float:
        """CPU per tenant had every tenant made `requests_per_min` (the 1-tenant run's)."""
        return self.ms_per_request * requests_per_min / 60 / 10


@dataclass
class Load:
    tenants: int
    screens: int
    seconds: float
    cpu_s: float
    rss_kib: int
    calls: int
    accepted: int
    hooks_per_tenant_s: float
    latencies_ms: list[float] = field(default_factory=list)
    seen: float = 0.0
    foreign: int = 0  # marked calls seen on a screen of another tenant: must be 0
    errors: list[str] = field(default_factory=list)

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- the two servers ---------------------------------------------------------------------


@contextmanager
def simulator(tenants: int, agents: int, tmp: Path) -> Iterator[Sim]:
    port = free_port()
    t0 = time.monotonic()
    proc = _spawn(["bench.tenant_sim", "--port", str(port), "--tenants", str(tenants), "--agents", str(agents)],
                  {}, tmp / "sim.log")
    try:
        _wait(proc, f"http://127.0.0.1:{port}/_sim/stats", tmp / "sim.log", timeout=300)
        yield Sim(proc, port, time.monotonic() - t0)
    finally:
        _end(proc)


def write_config(path: Path, *, port: int, sim_port: int, tenants: int, storage: Path) -> None:
    lines = [
        "[server]", f'port = {port}', f'public_url = "http://127.0.0.1:{port}"',
        "[pbx]", f'base_url = "http://127.0.0.1:{sim_port}"', 'api_key = "unused-with-tenants"',
        "[webhook]", 'events = ["ringing", "answered", "hangup"]',
        "[auth]", 'mode = "none"',
        "[display]", "mask_phone_numbers = false",  # the screens find the marked callers' numbers
        "[storage]", f'path = "{storage}"',
    ]
    for k in range(1, tenants + 1):
        lines += ["[[tenants]]", f'id = "t{k}"', f'name = "Tenant {k}"', f'api_key = "sim-api-key-t{k}"']
    path.write_text("\n".join(lines) + "\n")


@contextmanager
def wallboard(sim: Sim, tenants: int, tmp: Path, port: int, ready_timeout: float = 180.0) -> Iterator[Board]:
    """`wallboard serve` with tenants t1..tN; yields once every tenant's first poll is in, or
    after `ready_timeout` with those that are (a server that cannot keep up is a figure too)."""
    path = tmp / f"wallboard-{tenants}.toml"
    write_config(path, port=port, sim_port=sim.port, tenants=tenants, storage=tmp / "wallboard.db")
    log = tmp / f"wallboard-{tenants}.log"
    t0 = time.monotonic()
    proc = _spawn(["wallboard.cli", "serve", "--config", str(path)], {}, log)
    try:
        _wait(proc, f"http://127.0.0.1:{port}/readyz", log, timeout=300)
        deadline = time.monotonic() + ready_timeout
        while True:
            states = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=60).json()["tenants"]
            ready = sum(1 for s in states.values() if s["ready"])
            if ready == len(states) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        yield Board(proc, port, list(states), time.monotonic() - t0, ready)
    finally:
        _end(proc)


def _end(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def tcp_connections(pid: int, port: int) -> int:
    """Established TCP connections of process `pid` to 127.0.0.1:`port`, from /proc."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for row in f:
                cols = row.split()
                if cols[3] == "01" and int(cols[2].rsplit(":", 1)[1], 16) == port and cols[9] in inodes:
                    count += 1
    return count


# -- the two windows ---------------------------------------------------------------------


def idle_window(sim: Sim, board: Board, seconds: float) -> Idle:
    pid = board.proc.pid
    t0, cpu0, counts0 = time.time(), procstat.cpu_seconds(pid), sim.per_tenant()
    tcp: list[int] = []
    while time.time() - t0 < seconds:
        tcp.append(tcp_connections(pid, sim.port))
        time.sleep(min(1.0, max(0.0, seconds - (time.time() - t0))))
    cpu, t1 = procstat.cpu_seconds(pid) - cpu0, time.time()
    counts1 = sim.per_tenant()
    elapsed = t1 - t0
    requests = {t: (counts1.get(t, 0) - counts0.get(t, 0)) * 60 / elapsed for t in board.tenants}
    return Idle(len(board.tenants), elapsed, cpu, procstat.rss_kib(pid), requests, sim.arrivals(t0, t1),
                max(tcp, default=0), tcp[-1] if tcp else 0)


def load_window(sim: Sim, board: Board, plan: Plan, screens: int, first_marker: int) -> Load:
    tenants = board.tenants
    per_screen = tuple(tenants[i % len(tenants)] for i in range(screens))
    ready, results, stop = CTX.Queue(), CTX.Queue(), CTX.Event()
    origin = board.url
    jobs = [ScreensJob(board.port, origin, per_screen[w::WORKERS]) for w in range(WORKERS)]
    jobs = [j for j in jobs if j.tenants]
    procs = [CTX.Process(target=worker, args=(j, ready, stop, results), daemon=True) for j in jobs]
    for p in procs:
        p.start()
    connected = sum(ready.get(timeout=600) for _ in procs)
    time.sleep(1.0)  # snapshots sent
    pid = board.proc.pid
    cpu0, hooks0, t0 = procstat.cpu_seconds(pid), sim.hooks().get("sent", 0), time.monotonic()
    sent: dict[int, tuple[int, int]] = {}  # marker -> (time_ns before the POST, tenant index)
    statuses: list[int] = []
    errors: list[str] = []
    asyncio.run(_calls(sim.port, tenants, plan, first_marker, sent, statuses, errors))
    time.sleep(RING_S + 2.0)  # the last calls' hangups, and the screens keep counting
    elapsed = time.monotonic() - t0
    cpu = procstat.cpu_seconds(pid) - cpu0
    hooks = sim.hooks().get("sent", 0) - hooks0
    rss = procstat.rss_kib(pid)
    stop.set()
    outs = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(10)
    load = Load(len(tenants), screens, elapsed, cpu, rss, calls=len(sent),
                accepted=sum(1 for s in statuses if s == 200),
                hooks_per_tenant_s=hooks / plan.seconds / len(tenants))
    index = {t: i for i, t in enumerate(tenants)}
    calls_of: dict[int, int] = {}
    for _, tenant_index in sent.values():
        calls_of[tenant_index] = calls_of.get(tenant_index, 0) + 1
    expected = pairs = 0
    for out in outs:
        load.errors += out["errors"]
        for tenant in out["tenants"]:
            expected += calls_of.get(index[tenant], 0)
        for k, t, owner in zip(out["ids"], out["times"], out["owner"], strict=True):
            mark = sent.get(k)
            if mark is None:
                continue
            if mark[1] != index[out["tenants"][owner]]:
                load.foreign += 1
                continue
            load.latencies_ms.append((t - mark[0]) / 1e6)
            pairs += 1
    load.seen = pairs / expected if expected else 0.0
    load.errors += errors[:3]
    if connected < screens:
        load.errors.append(f"only {connected} of {screens} screens connected")
    return load


async def _calls(port: int, tenants: list[str], plan: Plan, first_marker: int,
                 sent: dict[int, tuple[int, int]], statuses: list[int], errors: list[str]) -> None:
    """Each tenant: a call every 2/rate seconds (two webhooks each), the tenants' turns
    spread evenly over that period."""
    period = 2.0 / plan.rate
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(8):
        pool.put_nowait(Conn("127.0.0.1", port))
    next_marker = [first_marker]
    start = time.monotonic() + 0.1
    rounds = max(1, int(plan.seconds / period))

    async def tenant(i: int, tenant_id: str) -> None:
        for k in range(rounds):
            at = start + period * (k + i / len(tenants))
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            n = next_marker[0]
            next_marker[0] += 1
            body = orjson.dumps({"exts": [str(1001 + k % plan.agents)], "number": marker_number(n),
                                 "ring_seconds": RING_S})
            conn = await pool.get()
            try:
                sent[n] = (time.time_ns(), i)
                status, answer, _ = await conn.request("POST", f"/_sim/calls?tenant={tenant_id}", body)
            finally:
                pool.put_nowait(conn)
            statuses.append(status)
            if status != 200 and len(errors) < 3:
                errors.append(f"{tenant_id}: {status} {answer[:120]!r}")

    try:
        # A simulator that cannot keep up answers late: the calls not made by then are not made.
        async with asyncio.timeout(plan.seconds + 30):
            await asyncio.gather(*(tenant(i, t) for i, t in enumerate(tenants)))
    except TimeoutError:
        errors.append(f"the simulator took the scripted calls too slowly: {len(sent)} made")
    finally:
        while not pool.empty():
            await pool.get_nowait().close()


# -- figures -------------------------------------------------------------------------------


def spread(arrivals: list[float], since: float, seconds: float) -> dict[str, float]:
    """How the PBX requests fall in time: per 100 ms window over the whole idle window (the
    busiest against the mean), and folded onto one 2 s poll interval (a herd at :00 makes
    one fold far above the others)."""
    bins = max(1, int(seconds / BIN_S))
    counts = [0] * bins
    folds = [0] * int(POLL_S / BIN_S)
    for t in arrivals:
        b = int((t - since) / BIN_S)
        if 0 <= b < bins:
            counts[b] += 1
        folds[int((t % POLL_S) / BIN_S)] += 1
    mean = len(arrivals) / bins
    fold_mean = len(arrivals) / len(folds)
    return {"requests": len(arrivals), "per_s": len(arrivals) / seconds, "mean_100ms": mean,
            "max_100ms": max(counts), "p99_100ms": sorted(counts)[min(bins - 1, int(0.99 * bins))],
            "fold_max": max(folds) / fold_mean if fold_mean else float("nan"),
            "fold_min": min(folds) / fold_mean if fold_mean else float("nan")}


def provider_refresh_ms(tenants: int, agents: int, tmp: Path, repeats: int = 10) -> float:
    """The provider's rows read again (once a second in a server), over `tenants` tenants of
    `agents` agents each, in this process: ms per refresh once nothing changes."""
    from wallboard.app import create_app, site_of
    from wallboard.pbx.models import parse_agents
    from wallboard.poller import now_ms
    from wallboard.provider import ProviderBoard
    from wallboard.settings import load_settings
    from wallboard.sim.app import SimOptions, build_runtime

    path = tmp / "provider.toml"
    write_config(path, port=free_port(), sim_port=free_port(), tenants=tenants, storage=tmp / "provider.db")
    site = site_of(create_app(load_settings(path)))
    sim = build_runtime(SimOptions(agents=agents, rate=0, logged_in_ratio=1.0, prefill=False))
    rows = parse_agents(orjson.loads(sim.monitor_body()))
    for parts in site.tenants.values():
        parts.engine.live.apply_agents(rows, now_ms())
    board = ProviderBoard(site)
    board.refresh()
    t = time.perf_counter()
    for _ in range(repeats):
        board.refresh()
    return 1000 * (time.perf_counter() - t) / repeats


def ms(v: float) -> str:
    return "—" if math.isnan(v) else (f"{v:.1f}" if v < 100 else f"{v:.0f}")


def _ratio(a: float, b: float) -> str:
    return "—" if not b or math.isnan(a) or math.isnan(b) else f"{a / b:.2f}"


IDLE_HEADER = ("| run | tenants | polled | CPU % of a core | CPU % per tenant | CPU ms per PBX request | RSS MiB "
               "| PBX req/tenant/min (min–max) | TCP to the PBX (max) |")
LOAD_HEADER = ("| run | tenants | screens | webhooks/s/tenant | p50 ms | p99 ms | max ms | seen % | foreign "
               "| server CPU % | RSS MiB |")


def idle_line(label: str, idle: Idle, ready: int) -> str:
    reqs = list(idle.requests.values())
    return (f"| {label} | {idle.tenants} | {ready} | {idle.cpu_pct:.1f} | {idle.cpu_pct_per_tenant:.3f} "
            f"| {idle.ms_per_request:.2f} | {idle.rss_kib / 1024:.0f} "
            f"| {idle.requests_mean():.1f} ({min(reqs):.0f}–{max(reqs):.0f}) | {idle.tcp_last} ({idle.tcp_max}) |")


def load_line(label: str, load: Load) -> str:
    return (f"| {label} | {load.tenants} | {load.screens} | {load.hooks_per_tenant_s:.2f} | {ms(load.pct(0.5))} "
            f"| {ms(load.pct(0.99))} | {ms(load.pct(1.0))} | {100 * load.seen:.1f} | {load.foreign} "
            f"| {100 * load.cpu_s / load.seconds:.0f} | {load.rss_kib / 1024:.0f} |")


def spread_line(n: int, s: dict[str, float]) -> str:
    return (f"- {n} tenants: {s['requests']:.0f} requests, {s['per_s']:.1f}/s; per 100 ms: mean "
            f"{s['mean_100ms']:.1f}, p99 {s['p99_100ms']:.0f}, max {s['max_100ms']:.0f} "
            f"(max/mean {_ratio(s['max_100ms'], s['mean_100ms'])}); folded onto one 2 s interval: the busiest "
            f"100 ms {s['fold_max']:.2f} x the mean, the quietest {s['fold_min']:.2f} x")


def machine_load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def run(plan: Plan) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="wallboard-tenants-"))
    port = free_port()  # the same for both runs: tenant t1's webhook registration is kept
    out: dict[str, Any] = {"plan": plan.__dict__, "load_before": machine_load()}
    print(f"# wallboard bench: tenants ({plan.tenants} x {plan.agents} agents, {plan.screens} screens, "
          f"{plan.rate:g} webhook/s per tenant), {time.strftime('%Y-%m-%d %H:%M %Z')}", flush=True)
    print(f"{machine_load()}; the simulator, the screens and the server share these cores", flush=True)
    sizes = (1, plan.tenants) if plan.baseline else (plan.tenants,)
    idle_rows: list[tuple[Idle, int]] = []
    load_rows: list[Load] = []
    spreads: dict[int, dict[str, float]] = {}
    with simulator(plan.tenants, plan.agents, tmp) as sim:
        rss = procstat.rss_kib(sim.proc.pid)
        print(f"simulator: {plan.tenants} tenants up in {sim.started_s:.1f} s, RSS {rss / 1024:.0f} MiB", flush=True)
        out["sim"] = {"started_s": sim.started_s, "rss_kib": rss}
        marker = 1
        for n in sizes:
            sim_cpu0 = procstat.cpu_seconds(sim.proc.pid)
            with wallboard(sim, n, tmp, port, plan.ready_timeout) as board:
                print(f"wallboard with {n} tenants: {board.ready} polled {board.ready_s:.1f} s after start", flush=True)
                time.sleep(plan.settle)
                t0 = time.time()
                idle = idle_window(sim, board, plan.idle_seconds)
                spreads[n] = spread(idle.arrivals, t0, idle.seconds)
                idle_rows.append((idle, board.ready))
                print(f"idle, {n} tenants: {idle_line(str(n), idle, board.ready)}", flush=True)
                load = load_window(sim, board, plan, plan.baseline_screens if n == 1 else plan.screens, marker)
                marker += load.calls + 1
                load_rows.append(load)
                print(f"load, {n} tenants: {load_line(str(n), load)}", flush=True)
            out[f"sim_{n}"] = {"rss_kib": procstat.rss_kib(sim.proc.pid),
                               "cpu_s": procstat.cpu_seconds(sim.proc.pid) - sim_cpu0}
    refresh_ms = provider_refresh_ms(plan.tenants, plan.agents, tmp)
    report(plan, idle_rows, load_rows, spreads, refresh_ms, out)
    out.update(idle=[{**{k: v for k, v in i.__dict__.items() if k != "arrivals"}, "ready": r} for i, r in idle_rows],
               spread=spreads, provider_refresh_ms=refresh_ms,
               load=[{**{k: v for k, v in ld.__dict__.items() if k != "latencies_ms"},
                      "p50": ld.pct(0.5), "p99": ld.pct(0.99), "max": ld.pct(1.0)} for ld in load_rows])
    return out


def report(plan: Plan, idle_rows: list[tuple[Idle, int]], load_rows: list[Load],
           spreads: dict[int, dict[str, float]], refresh_ms: float, out: dict[str, Any]) -> None:
    print("\nIdle (no screens, no events), the server process:")
    print(IDLE_HEADER)
    print("|---" * (IDLE_HEADER.count("|") - 1) + "|")
    labels = ("1 tenant", f"{plan.tenants} tenants") if plan.baseline else (f"{plan.tenants} tenants",)
    for label, (idle, ready) in zip(labels, idle_rows, strict=True):
        print(idle_line(label, idle, ready))
    many = idle_rows[-1][0]
    if plan.baseline:
        base = idle_rows[0][0]
        per_tenant_kib = (many.rss_kib - base.rss_kib) / max(1, many.tenants - 1)
        out["memory_per_tenant_kib"] = per_tenant_kib
        at = many.cpu_pct_per_tenant_at(base.requests_mean())
        print(f"\nmemory per tenant: (RSS with {many.tenants} - RSS with 1) / {many.tenants - 1} "
              f"= {per_tenant_kib:.0f} KiB")
        print(f"CPU per tenant (goal <= 0.1 % of a core at 2 s intervals): {many.cpu_pct_per_tenant:.3f} % "
              f"as measured, {at:.3f} % at the 1-tenant request rate; CPU per PBX request, "
              f"{many.tenants} tenants / 1: {_ratio(many.ms_per_request, base.ms_per_request)}")
        print(f"PBX requests per tenant per minute: {many.requests_mean():.1f} with {many.tenants} tenants, "
              f"{base.requests_mean():.1f} with 1: ratio {_ratio(many.requests_mean(), base.requests_mean())}")
    print(f"provider's rows, {plan.tenants} tenants: {refresh_ms:.2f} ms per refresh, once a second: "
          f"{refresh_ms / 10:.2f} % of a core")
    print("\nSpread of the PBX requests over the idle window:")
    for n, s in spreads.items():
        print(spread_line(n, s))
    print("\nLoad: screens connected, scripted calls on the simulator:")
    print(LOAD_HEADER)
    print("|---" * (LOAD_HEADER.count("|") - 1) + "|")
    for label, load in zip(labels, load_rows, strict=True):
        print(load_line(label, load))
        if load.errors:
            print(f"  errors: {load.errors[:4]}")
    last = out[f"sim_{plan.tenants}"]
    print(f"\nsimulator after the {plan.tenants}-tenant run: RSS {last['rss_kib'] / 1024:.0f} MiB, "
          f"{last['cpu_s']:.0f} s of CPU during it")
    print(f"{machine_load()} at the end", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK.tenants} tenants, a short smoke run")
    parser.add_argument("--tenants", type=int, help="override the number of tenants")
    parser.add_argument("--screens", type=int, help="override the number of screens")
    parser.add_argument("--seconds", type=float, help="override the idle and load windows")
    parser.add_argument("--json", help="write every figure to this file")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    if args.tenants:
        plan = replace(plan, tenants=args.tenants)
    if args.screens:
        plan = replace(plan, screens=args.screens)
    if args.seconds:
        plan = replace(plan, idle_seconds=args.seconds, seconds=args.seconds)
    started = time.monotonic()
    figures = run(plan)
    if args.json:
        Path(args.json).write_text(orjson.dumps(figures, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())
    print(f"\ndone in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
