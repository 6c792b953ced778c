"""In-process figures: merging a big agent poll, that an unchanged poll publishes nothing,
and what one webhook costs on a busy day.

`python -m bench.micro [--agents M] [--changed K] [--repeats R] [--runs N] [--flows F] [--profile]`
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import time
from typing import Any

from wallboard.pbx.models import AgentRecord, Cdr, parse_agents
from wallboard.pbx.times import PbxTime
from wallboard.state import CallEvent, LiveState

TZ = "Asia/Ho_Chi_Minh"
NOON = 1_764_306_000_000  # 2025-11-28 12:00 local: half a day of CDRs behind it


def _agent_rows(m: int, ringing: set[int]) -> list[dict[str, Any]]:
    return [{"extension": str(1000 + i), "agent_name": f"Agent {i}", "username": f"u{i}",
             "call_id": f"c{i}" if i in ringing else "", "call_state": "RINGING" if i in ringing else "",
             "call_time": "", "destination": f"09{i:08d}" if i in ringing else "",
             "direction": "inbound" if i in ringing else "", "domain_name": "bench.local",
             "network_ip": "10.1.2.3", "user_agent": "Yealink SIP-T54W"} for i in range(m)]


def _rows(m: int, ringing: set[int]) -> list[AgentRecord]:
    return parse_agents({"data": _agent_rows(m, ringing)})


def merge_figures(m: int = 5000, changed: int = 50, repeats: int = 20) -> dict[str, Any]:
    """Median ms to merge an m-agent poll (unchanged, and with `changed` agents ringing,
    each with its own caller). Between rounds the agents go idle and a calls poll ends
    their calls, as the PBX would; neither is timed."""
    live = LiveState(PbxTime(TZ), now_ms=int(time.time() * 1000))
    started = int(time.time() * 1000)
    t = time.perf_counter()
    live.apply_agents(_rows(m, set()), started)
    first_ms = (time.perf_counter() - t) * 1000
    same = _rows(m, set())
    unchanged_ops: list[Any] = []
    unchanged, with_changes = [], []
    for r in range(repeats):
        started += 1000
        t = time.perf_counter()
        unchanged_ops = live.apply_agents(same, started)
        unchanged.append((time.perf_counter() - t) * 1000)
        ringing = set(range(r * changed, (r + 1) * changed))
        rows = _rows(m, ringing)
        started += 1000
        t = time.perf_counter()
        live.apply_agents(rows, started)
        with_changes.append((time.perf_counter() - t) * 1000)
        live.apply_agents(same, started + 500)  # back to idle for the next round
        live.apply_calls([], started + 500)  # and their calls over
        started += 500
    return {
        "agents": m, "first_poll_ms": round(first_ms, 2),
        "unchanged_ms": round(statistics.median(unchanged), 2),
        "changed_ms": round(statistics.median(with_changes), 2), "changed": changed,
        "unchanged_ops": len(unchanged_ops),
        "unchanged_publishes": live.commit(unchanged_ops) is not None,
    }


def parse_figures(m: int = 5000, repeats: int = 10) -> dict[str, Any]:
    """Median ms to read an m-agent `/v1/monitor/agent` body (already JSON-decoded) into records."""
    body = {"data": _agent_rows(m, set())}
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        parse_agents(body)
        times.append((time.perf_counter() - t) * 1000)
    return {"agents": m, "parse_ms": round(statistics.median(times), 2)}


def _cdrs(clock: PbxTime, flows: int, now: int) -> list[Cdr]:
    start = clock.day_start_ms(now)
    step = (now - start) // (flows + 1)
    records = []
    for i in range(flows):
        began = start + (i + 1) * step
        answered = i % 4 != 0
        records.append(Cdr(
            id=f"flow-{i}", sip_call_id="", cause="", duration=90, direction="inbound" if i % 3 else "outbound",
            recording_url="", extension="1001", from_number="0899123456", to_number="19001919",
            receive_dest="", time_started=clock.format(began),
            time_answered=clock.format(began + (i % 40) * 1000) if answered else "",
            time_ended=clock.format(began + 90_000), status="ANSWERED" if answered else "NO ANSWER"))
    return records


def event_figures(flows: int = 20_000, agents: int = 200, calls: int = 500) -> dict[str, Any]:
    """Median µs of one `apply_event` (ringing, answered, hangup in turn) with `flows` CDRs today."""
    clock = PbxTime(TZ)
    live = LiveState(clock, now_ms=NOON)
    live.apply_cdrs(_cdrs(clock, flows, NOON), NOON)
    live.apply_agents(parse_agents({"data": _agent_rows(agents, set())}), NOON)
    times = []
    for i in range(calls):
        at = NOON + 1000 + i * 10
        for state in ("ringing", "answered", "hangup"):
            ev = CallEvent(state=state, call_id=f"e{i}", direction="inbound", from_number="0899123456",
                           to_number=str(1000 + i % agents), hotline="19001919", at=at, received=at)
            t = time.perf_counter()
            live.apply_event(ev)
            times.append((time.perf_counter() - t) * 1e6)
    return {"flows": len(live.stats.flows), "event_us": round(statistics.median(times), 1)}


def sim_monitor_figures(m: int = 5000, repeats: int = 15) -> dict[str, Any]:
    """Median ms for the PBX simulator to build and encode an m-agent `/v1/monitor/agent`
    answer after a change in its world (the worst case: its cache is no use)."""
    from wallboard.sim.app import SimOptions, build_runtime

    rt = build_runtime(SimOptions(agents=m, seed=2, speed=1.0))
    times = []
    for _ in range(repeats):
        rt.world.version += 1
        t = time.perf_counter()
        body = rt.monitor_body()
        times.append((time.perf_counter() - t) * 1000)
    return {"agents": m, "monitor_ms": round(statistics.median(times), 2), "bytes": len(body)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.micro", description=__doc__)
    parser.add_argument("--agents", type=int, default=5000, help="agents in the polled answer")
    parser.add_argument("--changed", type=int, default=50, help="agents that change between two polls")
    parser.add_argument("--repeats", type=int, default=20, help="polls merged per run (the median is shown)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each figure (the machine is noisy)")
    parser.add_argument("--flows", type=int, default=20_000, help="CDR flows of the day behind each event")
    parser.add_argument("--profile", action="store_true", help="cProfile one run of the merge instead")
    args = parser.parse_args(argv)
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(merge_figures, args.agents, args.changed, args.repeats)
        profile.runcall(event_figures, args.flows)
        pstats.Stats(profile).sort_stats("tottime").print_stats(20)
        return
    for run in range(1, args.runs + 1):
        merge = merge_figures(args.agents, args.changed, args.repeats)
        parse = parse_figures(args.agents)
        event = event_figures(args.flows)
        sim = sim_monitor_figures(args.agents)
        print(f"run {run}: merge of {merge['agents']} agents: unchanged {merge['unchanged_ms']} ms, "
              f"{merge['changed']} changed {merge['changed_ms']} ms (first {merge['first_poll_ms']} ms, "
              f"unchanged ops {merge['unchanged_ops']}); parse {parse['parse_ms']} ms; "
              f"one event with {event['flows']} flows today: {event['event_us']} µs; "
              f"simulator's /v1/monitor/agent ({sim['bytes']} B) {sim['monitor_ms']} ms")


if __name__ == "__main__":
    main()
