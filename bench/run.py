"""`python -m bench.run [--quick]`: the wallboard's pushed diffs against the peers'
polling of the whole state, side by side, on this machine. See bench/RESULTS.md."""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from bench import micro, tenants
from bench.phases import Figures, run_phase
from bench.servers import servers


@dataclass(frozen=True)
class Plan:
    agents: tuple[int, ...]
    screens: tuple[int, ...]
    rate: float  # events per second
    seconds: float  # per phase
    flood: int  # webhooks in the ingest test
    flood_screens: int
    memory_screens: int
    stalled: int
    stalled_screens: int
    stalled_pairs: int  # phases with and without the stalled screens, order alternating


FULL = Plan(agents=(100, 2000, 5000), screens=(10, 200, 500), rate=50, seconds=10, flood=10_000,
            flood_screens=200, memory_screens=1000, stalled=50, stalled_screens=200, stalled_pairs=4)
QUICK = Plan(agents=(2000,), screens=(10, 50), rate=50, seconds=4, flood=2000, flood_screens=50,
             memory_screens=200, stalled=10, stalled_screens=50, stalled_pairs=1)


def machine() -> str:
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"{os.cpu_count()} cores, {model}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def grid(plan: Plan, only: set[str] | None) -> tuple[list[Figures], list[Figures]]:
    rows: list[Figures] = []
    extras: list[Figures] = []
    next_id = 1
    for m in plan.agents:
        with servers(m) as srv:
            for n in plan.screens:
                for label, kind, interval in (("push /ws", "screen", 1.0), ("poll 1 s", "poll", 1.0),
                                              ("poll 2 s", "poll", 2.0)):
                    settle = 1.0 if kind == "screen" else interval + 0.5
                    fig = run_phase(srv, label, kind, n, agents=m, first_id=next_id, rate=plan.rate,
                                    seconds=plan.seconds, interval=interval, settle=settle)
                    next_id += 100_000
                    rows.append(fig)
                    print(line(fig), flush=True)
            if m == 2000 and (only is None or "extras" in only):
                extras += extra_phases(srv, plan, next_id)
                next_id += 1_000_000
    return rows, extras


def extra_phases(srv: Any, plan: Plan, first_id: int) -> list[Figures]:
    out = []
    # A p99 of one phase moves by tens of percent between runs on shared cores, so the
    # stalled screens' cost is the mean over pairs, in alternating order (later phases
    # find a fuller PBX overlay).
    n = plan.stalled_screens
    p99s: dict[int, list[float]] = {0: [], plan.stalled: []}
    for pair in range(plan.stalled_pairs):
        order = (0, plan.stalled) if pair % 2 == 0 else (plan.stalled, 0)
        for stalled in order:
            label = f"push, {n} + {stalled} stalled" if stalled else f"push, {n} screens"
            fig = run_phase(srv, label, "screen", n, agents=2000, first_id=first_id, rate=plan.rate,
                            seconds=plan.seconds * 2, stalled=stalled)
            first_id += 100_000
            out.append(fig)
            p99s[stalled].append(fig.pct(0.99))
            print(line(fig), flush=True)
    with_, without = statistics.mean(p99s[plan.stalled]), statistics.mean(p99s[0])
    print(f"stalled screens, {plan.stalled_pairs} pairs: mean p99 {with_:.1f} ms with, {without:.1f} ms "
          f"without ({100 * (with_ / without - 1):+.0f} %)", flush=True)
    # The PBX's concurrency is not ours to choose: as few and as many senders as a PBX may use.
    for senders in (16, 64):
        fig = run_phase(srv, f"ingest, {plan.flood_screens} screens, {senders} senders", "screen",
                        plan.flood_screens, agents=2000, first_id=first_id, flood=plan.flood, settle=2.0,
                        senders=senders)
        first_id += 100_000
        out.append(fig)
        print(line(fig), f"ingest {fig.ingest_per_s:.0f}/s accepted {fig.accepted}/{fig.events}", flush=True)
    fig = run_phase(srv, f"memory, {plan.memory_screens} screens", "screen", plan.memory_screens, agents=2000,
                    first_id=first_id, rate=plan.rate, seconds=plan.seconds)
    out.append(fig)
    print(line(fig), f"rss {fig.rss_before_kib} -> {fig.rss_kib} KiB", flush=True)
    return out


def ms(v: float) -> str:
    return "—" if math.isnan(v) else (f"{v:.1f}" if v < 100 else f"{v:.0f}")


def per_change(f: Figures) -> float:
    """Bytes a screen got per event (each event changes one agent); pushed screens only."""
    if f.label.startswith("poll") or not f.events_per_screen:
        return float("nan")
    return f.bytes_per_screen / f.events_per_screen


def cpu_us(f: Figures) -> float:
    return f.cpu_s * 1e6 / f.deliveries if f.deliveries else float("nan")


HEADER = ("| M agents | N screens | way | p50 ms | p99 ms | max ms | seen % | KB/screen/s "
          "| B/event | server CPU % | CPU µs/delivery | RSS MiB | PBX req/min |")


def line(f: Figures) -> str:
    pbx = sum(v for k, v in f.pbx_per_min.items() if k != "/v1/auth/token")
    change = "—" if math.isnan(per_change(f)) else f"{per_change(f):.0f}"
    return (f"| {f.agents} | {f.screens} | {f.label} | {ms(f.pct(0.5))} | {ms(f.pct(0.99))} "
            f"| {ms(f.pct(1.0))} | {100 * f.seen:.1f} | {f.bytes_per_screen / f.seconds / 1024:.2f} "
            f"| {change} | {100 * f.cpu_s / f.seconds:.0f} | {cpu_us(f):.1f} "
            f"| {f.rss_kib / 1024:.0f} | {pbx:.0f} |")


def ratios(rows: list[Figures]) -> list[str]:
    out = ["| M | N | vs | p50 ours/theirs | p99 ours/theirs | bytes/s ours/theirs | CPU/s ours/theirs |",
           "|---|---|---|---|---|---|---|"]
    by = {(f.agents, f.screens, f.label): f for f in rows}
    for (m, n, label), ours in by.items():
        if label != "push /ws":
            continue
        for base in ("poll 1 s", "poll 2 s"):
            theirs = by.get((m, n, base))
            if theirs is None:
                continue
            rate_ours, rate_theirs = ours.bytes_per_screen / ours.seconds, theirs.bytes_per_screen / theirs.seconds
            out.append(f"| {m} | {n} | {base} | {_r(ours.pct(0.5), theirs.pct(0.5))} "
                       f"| {_r(ours.pct(0.99), theirs.pct(0.99))} "
                       f"| {_r(rate_ours, rate_theirs)} "
                       f"| {_r(ours.cpu_s / ours.seconds, theirs.cpu_s / theirs.seconds)} |")
    return out


def _r(a: float, b: float) -> str:
    if not b or math.isnan(a) or math.isnan(b):
        return "—"
    r = a / b
    return f"{r:.4f} (1/{1 / r:.0f})" if r and r < 0.1 else f"{r:.2f}"


def pbx_load(rows: list[Figures]) -> list[str]:
    out = []
    for f in rows:
        if f.label == "push /ws":
            per = ", ".join(f"{k} {v:.0f}" for k, v in sorted(f.pbx_per_min.items()) if v)
            out.append(f"- M={f.agents} N={f.screens}: {per}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small subset, under 2 minutes")
    parser.add_argument("--agents", type=int, nargs="*", help="override the M values")
    parser.add_argument("--screens", type=int, nargs="*", help="override the N values")
    parser.add_argument("--no-extras", action="store_true", help="skip ingest/memory/stalled")
    parser.add_argument("--no-browser", action="store_true", help="skip the headless Chromium step")
    parser.add_argument("--json", help="write every figure to this file")
    parser.add_argument("--no-tenants", action="store_true", help="skip the tenants phase (bench/tenants.py)")
    parser.add_argument("--tenants-only", action="store_true", help="only the tenants phase")
    parser.add_argument("--no-cluster", action="store_true", help="skip the cluster phase (bench/cluster.py)")
    args = parser.parse_args(argv)
    if args.tenants_only:
        tenants.run(tenants.QUICK if args.quick else tenants.FULL)
        return 0
    plan = QUICK if args.quick else FULL
    if args.agents:
        plan = Plan(**{**plan.__dict__, "agents": tuple(args.agents)})
    if args.screens:
        plan = Plan(**{**plan.__dict__, "screens": tuple(args.screens)})
    started = time.monotonic()
    print(f"# wallboard bench ({'quick' if args.quick else 'full'}), {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"machine: {machine()}; the load generator runs on the same cores as the server")
    print(f"events: {plan.rate:.0f}/s for {plan.seconds:.0f} s per phase\n")
    merge = micro.merge_figures()
    print(f"merge of a {merge['agents']}-agent poll: unchanged {merge['unchanged_ms']} ms, "
          f"{merge['changed']} changed {merge['changed_ms']} ms (first {merge['first_poll_ms']} ms); "
          f"unchanged poll ops {merge['unchanged_ops']}, publishes: {merge['unchanged_publishes']}\n")
    print(HEADER)
    print("|---" * (HEADER.count("|") - 1) + "|")
    rows, extras = grid(plan, None if not args.no_extras else set())
    print("\nRatios ours / baseline (smaller is better for us):")
    print("\n".join(ratios(rows)))
    print("\nPBX requests per minute per route during the push phases:")
    print("\n".join(pbx_load(rows)))
    if extras:
        print("\nExtras (M=2000):")
        for f in extras:
            print(f"- {f.label}: p50 {ms(f.pct(0.5))} ms, p99 {ms(f.pct(0.99))} ms, seen {100 * f.seen:.1f}%, "
                  f"drops {f.drops:.0f}, RSS {f.rss_before_kib} -> {f.rss_kib} KiB"
                  + (f" = {(f.rss_kib - f.rss_before_kib) / max(1, f.screens):.1f} KiB/screen"
                     if "memory" in f.label else "")
                  + (f", ingest {f.ingest_per_s:.0f} POST/s, accepted {f.accepted}/{f.events}"
                     if "ingest" in f.label else "")
                  + (f", errors {f.errors[:2]}" if f.errors else ""))
    if not args.no_extras:
        from bench.teams import report, team_phase

        # Issue 16: a TV narrowed to one team is sent only that team's changes.
        print(f"\nOne team's screen vs the whole board, same run (200 agents in 10 teams of 20, 20 screens "
              f"of each kind, {plan.rate:.0f} events/s over all agents, {plan.seconds:.0f} s):")
        print("\n".join(report(team_phase(rate=plan.rate, seconds=plan.seconds))), flush=True)
    if not args.no_browser:
        from bench.browser import headline, measure, static_server

        # The supervisor's tab and the TV (kiosk layout) in the same run, 20 s of traffic each.
        with static_server() as url:
            print("\nBrowser (bench/web/bench.html, 2,000 agents, ~1,000 calls, 50 changes/s, 20 s):")
            for layout in ("tab", "kiosk"):
                r = measure(url, seconds=20, layout=layout)
                print(f"- {headline(r)}")
                if "frame_interval_ms" in r:
                    steady = [d for at, d in r["long_task_list"] if at >= 0]
                    print(f"  {layout}: frame p95 {r['frame_interval_ms']['p95']:.1f} ms, "
                          f"p99 {r['frame_interval_ms']['p99']:.1f} ms; long tasks during the traffic "
                          f"{len(steady)}, over 50 ms {sum(d > 50 for d in steady)}, max {max(steady, default=0)} ms")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"merge": merge, "rows": [_dump(f) for f in rows],
                       "extras": [_dump(f) for f in extras]}, out, indent=1)
    if not args.no_tenants:
        print()
        tenants.run(tenants.QUICK if args.quick else tenants.FULL)
    if not args.no_cluster:
        from bench import cluster

        print()  # three nodes on one Redis, beside the single process above (issue 14)
        cluster.main(["--quick"] if args.quick else [])
    print(f"\ndone in {time.monotonic() - started:.0f} s")
    return 0


def _dump(f: Figures) -> dict[str, Any]:
    d = {k: v for k, v in f.__dict__.items() if k != "latencies_ms"}
    d.update(p50=f.pct(0.5), p99=f.pct(0.99), max=f.pct(1.0), deliveries=f.deliveries)
    return d


if __name__ == "__main__":
    sys.exit(main())
