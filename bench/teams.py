"""One team's screen against the whole board, in the same run (issue 16): `teams` teams
of equal size in [[teams]], `screens` screens on /ws and as many on /ws?team=T1, all
connected at once while webhooks ring agents at `rate` per second spread over every
agent. Per screen: bytes per second and wake-ups per second (frames received, pings
included), from after the first snapshot to the end."""

from __future__ import annotations

import asyncio
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from bench.poster import Poster
from bench.servers import servers

FIRST_EXT = 1001  # the synthetic PBX's extensions (wallboard/sim/roster.py)


@dataclass
class Screen:
    frames: int = 0
    patches: int = 0
    bytes: int = 0
    started: float = 0.0
    ready: asyncio.Event = field(default_factory=asyncio.Event)


def teams_config(agents: int, teams: int) -> Path:
    size = agents // teams
    lines = []
    for t in range(teams):
        exts = ", ".join(f'"{FIRST_EXT + t * size + i}"' for i in range(size))
        lines.append(f'[[teams]]\nname = "T{t + 1}"\nextensions = [{exts}]\n')
    path = Path(tempfile.mkdtemp(prefix="wallboard-bench-teams-")) / "teams.toml"
    path.write_text("\n".join(lines))
    return path


async def _screen(port: int, query: str, s: Screen, stop: asyncio.Event) -> None:
    async with connect(f"ws://127.0.0.1:{port}/ws{query}", compression=None, max_size=None,
                       ping_interval=None, open_timeout=60, close_timeout=1) as ws:
        await ws.recv(decode=False)  # the snapshot
        s.started = time.perf_counter()
        s.ready.set()
        while not stop.is_set():
            try:
                data = await asyncio.wait_for(ws.recv(decode=False), 0.5)
            except TimeoutError:
                continue
            s.frames += 1
            s.bytes += len(data)
            s.patches += data.startswith(b'{"type":"patch"')


async def _phase(srv: Any, screens: int, rate: float, seconds: float) -> dict[str, dict[str, float]]:
    stop = asyncio.Event()
    groups = {"whole board": "", "one team (T1)": "?team=T1"}
    made = {label: [Screen() for _ in range(screens)] for label in groups}
    tasks = [asyncio.create_task(_screen(srv.port, query, s, stop))
             for label, query in groups.items() for s in made[label]]
    await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for ss in made.values() for s in ss)), 60)
    poster = Poster(srv, first_id=50_000_000)
    start = time.perf_counter()
    await poster.paced(rate, seconds)
    await asyncio.sleep(1.0)  # the last patches land
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await poster.close()
    elapsed = time.perf_counter() - start
    out: dict[str, dict[str, float]] = {}
    for label, ss in made.items():
        out[label] = {
            "bytes_per_s": sum(s.bytes for s in ss) / len(ss) / elapsed,
            "wakeups_per_s": sum(s.frames for s in ss) / len(ss) / elapsed,
            "patches_per_s": sum(s.patches for s in ss) / len(ss) / elapsed,
        }
    return out


def team_phase(*, agents: int = 200, teams: int = 10, screens: int = 20, rate: float = 50.0,
               seconds: float = 10.0) -> dict[str, dict[str, float]]:
    with servers(agents, config=teams_config(agents, teams)) as srv:
        return asyncio.run(_phase(srv, screens, rate, seconds))


def report(figures: dict[str, dict[str, float]]) -> list[str]:
    out = ["| screen | KB/s per screen | wake-ups/s per screen | patches/s per screen |", "|---|---|---|---|"]
    for label, f in figures.items():
        out.append(f"| {label} | {f['bytes_per_s'] / 1024:.2f} | {f['wakeups_per_s']:.1f} | {f['patches_per_s']:.1f} |")
    whole, team = figures["whole board"], figures["one team (T1)"]
    if whole["bytes_per_s"] and whole["wakeups_per_s"]:
        out.append(f"one team / whole board: bytes {team['bytes_per_s'] / whole['bytes_per_s']:.2f}, "
                   f"wake-ups {team['wakeups_per_s'] / whole['wakeups_per_s']:.2f}")
    return out


if __name__ == "__main__":
    print("\n".join(report(team_phase(seconds=6))))
