"""In-process figures: merging a big agent poll, and that an unchanged poll publishes nothing."""

from __future__ import annotations

import statistics
import time
from typing import Any

from wallboard.pbx.models import AgentRecord, parse_agents
from wallboard.pbx.times import PbxTime
from wallboard.state import LiveState


def _rows(m: int, ringing: set[int]) -> list[AgentRecord]:
    rows = [{"extension": str(1000 + i), "agent_name": f"Agent {i}", "username": f"u{i}",
             "call_id": f"c{i}" if i in ringing else "", "call_state": "RINGING" if i in ringing else "",
             "call_time": "", "destination": "0901234567" if i in ringing else "",
             "direction": "inbound" if i in ringing else "", "domain_name": "bench.local",
             "network_ip": "10.1.2.3", "user_agent": "Yealink SIP-T54W"} for i in range(m)]
    return parse_agents({"data": rows})


def merge_figures(m: int = 5000, changed: int = 50, repeats: int = 20) -> dict[str, Any]:
    """Median ms to merge an m-agent poll (unchanged, and with `changed` agents ringing)."""
    live = LiveState(PbxTime("Asia/Ho_Chi_Minh"), now_ms=int(time.time() * 1000))
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
        started += 500
    return {
        "agents": m, "first_poll_ms": round(first_ms, 2),
        "unchanged_ms": round(statistics.median(unchanged), 2),
        "changed_ms": round(statistics.median(with_changes), 2), "changed": changed,
        "unchanged_ops": len(unchanged_ops),
        "unchanged_publishes": live.commit(unchanged_ops) is not None,
    }
