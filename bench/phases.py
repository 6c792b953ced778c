"""One measured phase: start the screens in worker processes, wait until all are
connected, post the events, stop, and put the figures together."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import time
from dataclasses import dataclass, field
from typing import Any

from bench import procstat
from bench.clients import Job, worker
from bench.poster import Poster
from bench.servers import Servers

CTX = mp.get_context("spawn")
WORKERS = 2  # one per core; more processes only add switching


@dataclass
class Figures:
    label: str
    agents: int
    screens: int
    events: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    seen: float = 0.0  # share of (screen, event) pairs that arrived
    bytes_per_screen: float = 0.0
    events_per_screen: float = 0.0  # marked events each screen saw: one agent change each
    messages: int = 0
    cpu_s: float = 0.0
    rss_kib: int = 0
    rss_before_kib: int = 0
    pbx_per_min: dict[str, float] = field(default_factory=dict)
    ingest_per_s: float = 0.0
    accepted: int = 0
    drops: float = 0.0
    errors: list[str] = field(default_factory=list)

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def deliveries(self) -> int:
        return len(self.latencies_ms)


def run_phase(srv: Servers, label: str, kind: str, screens: int, *, agents: int, first_id: int,
              rate: float = 0.0, seconds: float = 0.0, interval: float = 1.0, flood: int = 0,
              stalled: int = 0, settle: float = 1.0, senders: int = 16) -> Figures:
    ready, results = CTX.Queue(), CTX.Queue()
    go, stop = CTX.Event(), CTX.Event()
    jobs = [Job(kind, srv.port, n, interval, seed=i)
            for i, n in enumerate(_split(screens, WORKERS)) if n]
    if stalled:
        jobs.append(Job("stalled", srv.port, stalled, seed=99))
    pid = srv.wallboard.pid
    rss_before = procstat.rss_kib(pid)
    procs = [CTX.Process(target=worker, args=(j, ready, go, stop, results), daemon=True) for j in jobs]
    for p in procs:
        p.start()
    connected = sum(ready.get(timeout=300) for _ in procs)
    time.sleep(settle)  # snapshots sent, queues empty
    cpu0, pbx0, drops0 = procstat.cpu_seconds(pid), srv.pbx_requests(), srv.metric("wallboard_queue_drops")
    rss = procstat.rss_kib(pid)
    t0 = time.monotonic()
    go.set()
    poster_out: dict[str, Any] = {}
    asyncio.run(_post(srv, first_id, rate, seconds, flood, senders, poster_out))
    time.sleep(settle)
    stop.set()
    elapsed = time.monotonic() - t0
    cpu = procstat.cpu_seconds(pid) - cpu0
    pbx1 = srv.pbx_requests()
    drops = srv.metric("wallboard_queue_drops") - drops0
    outs = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(10)
    sent: dict[int, int] = poster_out["sent"]
    fig = Figures(label, agents, screens, events=len(sent), seconds=elapsed, cpu_s=cpu,
                  rss_kib=rss, rss_before_kib=rss_before, drops=drops,
                  accepted=sum(1 for s in poster_out["statuses"].values() if s == 200),
                  ingest_per_s=poster_out.get("ingest_per_s", 0.0))
    fig.pbx_per_min = {r: (pbx1.get(r, 0) - pbx0.get(r, 0)) * 60 / elapsed for r in pbx1}
    live = [o for o in outs if o["kind"] != "stalled"]
    pairs = 0
    total_bytes = 0
    for o in live:
        fig.errors += o["errors"]
        total_bytes += sum(o["bytes"])
        fig.messages += sum(o["messages"])
        for k, t in zip(o["ids"], o["times"], strict=True):
            t_sent = sent.get(k)
            if t_sent is not None:
                fig.latencies_ms.append((t - t_sent) / 1e6)
                pairs += 1
    n_live = sum(o["count"] for o in live)
    fig.seen = pairs / (n_live * len(sent)) if n_live and sent else 0.0
    fig.bytes_per_screen = total_bytes / n_live if n_live else 0.0
    fig.events_per_screen = pairs / n_live if n_live else 0.0
    if connected < screens + stalled:
        fig.errors.append(f"only {connected} of {screens + stalled} screens connected")
    return fig


async def _post(srv: Servers, first_id: int, rate: float, seconds: float, flood: int, senders: int,
                out: dict[str, Any]) -> None:
    poster = Poster(srv, first_id)
    try:
        if flood:
            out["ingest_per_s"] = flood / await poster.flood(flood, connections=senders)
        elif rate:
            await poster.paced(rate, seconds)
        else:
            await asyncio.sleep(seconds)
    finally:
        await poster.close()
    out["sent"], out["statuses"] = poster.sent, poster.statuses


def _split(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]
