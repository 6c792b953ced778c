"""Soak: the simulator at high speed (a day of traffic in under 30 minutes) with
100 screens connected, the wallboard's RSS, open file descriptors and asyncio
tasks sampled every minute, and the final state compared with the simulator's
truth.

    python -m bench.soak --minutes 10 [--screens 100] [--agents 40] [--speed 50]

Both servers run as real `wallboard sim` / `wallboard serve` processes (the
helpers of tests/servers.py); the screens are WebSocket clients in this process
that follow seq and ask for a resync on a gap, like the board does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.servers import Server, sim_server, wait_until, wallboard_server

DAY_S = 86_400


@dataclass
class ScreenStats:
    seq: int = -1
    snapshots: int = 0
    patches: int = 0
    gaps: int = 0
    reconnects: int = 0


@dataclass
class Sample:
    minute: float
    rss_mb: float
    fds: int
    tasks: int
    screens: int
    seq: int
    patches_sent: int
    drops: int
    resyncs: int
    webhooks: dict[str, float] = field(default_factory=dict)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def scrape(text: str) -> dict[str, float]:
    """The metrics we sample, by name plus labels, from Prometheus text."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        name, _, value = line.rpartition(" ")
        if name.startswith(("wallboard_", "process_")):
            out[name] = float(value)
    return out


async def screen(url: str, stats: ScreenStats, stop: asyncio.Event) -> None:
    """One board: snapshot, then patches in seq order; a gap asks for a resync."""
    while not stop.is_set():
        try:
            async with connect(url, max_size=None, open_timeout=10) as ws:
                async for raw in ws:
                    msg = orjson.loads(raw)
                    if msg.get("type") == "snapshot":
                        stats.snapshots += 1
                        stats.seq = msg["seq"]
                    elif msg.get("type") == "patch":
                        stats.patches += 1
                        if stats.seq >= 0 and msg["seq"] != stats.seq + 1:
                            stats.gaps += 1
                            await ws.send('{"type": "resync"}')
                        stats.seq = msg["seq"]
                    if stop.is_set():
                        return
        except (OSError, ConnectionClosed, TimeoutError):
            pass
        if not stop.is_set():
            stats.reconnects += 1
            await asyncio.sleep(1.0)


def agent_states(agents: list[dict[str, Any]]) -> dict[str, str]:
    return {a["ext"]: a["state"] for a in agents}


async def sample(http: httpx.AsyncClient, wb: Server, started: float) -> Sample:
    m = scrape((await http.get(wb.url + "/metrics")).text)
    pid = wb.proc.pid
    return Sample(
        minute=round((time.monotonic() - started) / 60, 2),
        rss_mb=round(rss_mb(pid), 1),
        fds=open_fds(pid),
        tasks=int(m.get("wallboard_asyncio_tasks", -1)),
        screens=int(sum(v for k, v in m.items() if k.startswith("wallboard_screens{"))),
        seq=int(m.get("wallboard_seq", -1)),
        patches_sent=int(m.get("wallboard_patches_sent_total", 0)),
        drops=int(m.get("wallboard_queue_drops_total", 0)),
        resyncs=int(m.get("wallboard_resyncs_total", 0)),
        webhooks={k.split('"')[1]: v for k, v in m.items() if k.startswith("wallboard_webhooks_total{")},
    )


async def converge(http: httpx.AsyncClient, sim: Server, wb: Server, within: float) -> dict[str, Any]:
    """Stop traffic, let the calls end, and wait for the board to match the truth."""
    await http.post(sim.url + "/_sim/traffic", json={"rate": 0})
    deadline = time.monotonic() + within
    truth: dict[str, Any] = {}
    state: dict[str, Any] = {}
    while time.monotonic() < deadline:
        truth = (await http.get(sim.url + "/_sim/truth")).json()
        state = (await http.get(wb.url + "/api/state")).json()
        if (not truth["calls"] and not state["calls"]
                and agent_states(truth["agents"]) == agent_states(state["agents"])):
            return {"equal": True, "agents": len(truth["agents"]), "calls": 0,
                    "seq": state["seq"], "waited_s": round(within - (deadline - time.monotonic()), 1)}
        await asyncio.sleep(0.5)
    t, s = agent_states(truth.get("agents", [])), agent_states(state.get("agents", []))
    return {"equal": False, "differ": {e: (t.get(e), s.get(e)) for e in t.keys() | s.keys()
                                       if t.get(e) != s.get(e)},
            "truth_calls": len(truth.get("calls", [])), "board_calls": len(state.get("calls", []))}


async def soak(sim: Server, wb: Server, args: argparse.Namespace) -> dict[str, Any]:
    stop = asyncio.Event()
    ws_url = wb.url.replace("http://", "ws://") + "/ws"
    screens = [ScreenStats() for _ in range(args.screens)]
    tasks = [asyncio.create_task(screen(ws_url, s, stop)) for s in screens]
    samples: list[Sample] = []
    async with httpx.AsyncClient(timeout=10) as http:
        started = time.monotonic()
        end = started + args.minutes * 60
        while True:
            samples.append(await sample(http, wb, started))
            print(json.dumps(samples[-1].__dict__), flush=True)
            if time.monotonic() >= end:
                break
            await asyncio.sleep(min(args.sample_every, max(0.0, end - time.monotonic())))
        final = await converge(http, sim, wb, within=60)
        # every screen must have caught up with the last seq
        seq = final.get("seq", -2)
        with contextlib.suppress(AssertionError):
            await asyncio.to_thread(wait_until, lambda: all(s.seq >= seq for s in screens), 15,
                                    what="screens at the final seq")
        sim_stats = (await http.get(sim.url + "/_sim/stats")).json()
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    first, last = samples[min(1, len(samples) - 1)], samples[-1]  # minute 1: after warm-up
    return {
        "minutes": args.minutes, "speed": args.speed, "screens": args.screens, "agents": args.agents,
        "sim_hours_covered": round(args.minutes * 60 * args.speed / 3600, 1),
        "samples": [s.__dict__ for s in samples],
        "growth_after_warmup": {"rss_mb": round(last.rss_mb - first.rss_mb, 1),
                                "fds": last.fds - first.fds, "tasks": last.tasks - first.tasks},
        "screens_at_final_seq": sum(s.seq >= seq for s in screens),
        "screen_gaps": sum(s.gaps for s in screens),
        "screen_reconnects": sum(s.reconnects for s in screens),
        "screen_snapshots": sum(s.snapshots for s in screens),
        "screen_patches": sum(s.patches for s in screens),
        "final": final,
        "sim_requests": sim_stats,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--screens", type=int, default=100)
    parser.add_argument("--agents", type=int, default=40)
    parser.add_argument("--speed", type=float, default=50.0, help="sim clock speed; 50: a day in 28.8 min")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sample-every", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--out", type=Path, default=None, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    if DAY_S / args.speed > 30 * 60:
        parser.error("--speed must make a day pass in under 30 minutes (at least 48)")
    with tempfile.TemporaryDirectory(prefix="wallboard-soak-") as tmp_name:
        tmp = Path(tmp_name)
        with sim_server(tmp, "--agents", str(args.agents), "--seed", str(args.seed),
                        "--speed", str(args.speed)) as sim, \
                wallboard_server(tmp, sim.url, auth_mode="none", poll_agents_interval="2.0",
                                 poll_calls_interval="2.0", poll_status_interval="15.0",
                                 poll_cdr_interval="60.0") as wb:
            wait_until(lambda: httpx.get(wb.url + "/readyz").status_code == 200, 30, what="readyz")
            result = asyncio.run(soak(sim, wb, args))
            errors = [line for line in wb.log().splitlines() if " ERROR " in line or "Traceback" in line]
            result["wallboard_error_lines"] = len(errors)
            result["wallboard_error_examples"] = errors[:5]
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    ok = result["final"]["equal"] and result["screens_at_final_seq"] == args.screens
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
