"""Convergence against the simulator's ground truth.

Per seed: a simulator and a wallboard in this process, each behind a real uvicorn
on a loopback port, webhooks delivered over HTTP with every fault on (duplicates,
drops, reordering, delays). Traffic runs fast for a few seconds, then stops; once
the world has been still long enough for the webhooks to drain and a poll of
agents and of calls to land, the wallboard must equal `/_sim/truth`. Seeds run
several at a time in one event loop: they mostly wait on each other's sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets

from tests.factories import Running
from tests.screen import ScreenCopy
from tests.servers import listener, port_of, serving, until
from wallboard.app import create_app
from wallboard.settings import Settings, defaults
from wallboard.sim.app import SimOptions, create_sim_app
from wallboard.sim.runtime import Runtime

SEEDS = 50
AT_ONCE = 10
TRAFFIC_SECONDS = 2.0
SETTLE_TIMEOUT = 25.0
FAULTS = {"hook_duplicate": 0.2, "hook_drop": 0.15, "hook_reorder": 0.2, "hook_delay": 0.15,
          "hook_delay_seconds": 0.4}

def wallboard_settings(tmp: Path, port: int, sim_url: str, **poll: float) -> Settings:
    return defaults().with_values(
        server={"public_url": f"http://127.0.0.1:{port}", "port": port},
        pbx={"base_url": sim_url, "api_key": "sim-api-key", "timeout": 2.0},
        # 0.5 s: each read may take 0.45 s, with ten pairs sharing this process's loop
        poll={"agents_interval": 0.5, "calls_interval": 0.5, "status_interval": 5.0,
              "cdr_interval": 10.0, **poll},
        webhook={"secret": "convergence-secret"},
        auth={"mode": "none"},
        storage={"path": str(tmp / "wb.db")},
    )

@dataclass
class Pair:
    sim: Runtime
    sim_url: str
    wb: Running
    wb_url: str

@contextlib.asynccontextmanager
async def pair(tmp: Path, options: SimOptions, **poll: float) -> AsyncIterator[Pair]:
    """A simulator and a wallboard against it, both serving, hooks registered, first poll in."""
    sim_app = create_sim_app(options)
    async with serving(sim_app) as sim_url:
        sock = listener()
        app = create_app(wallboard_settings(tmp, port_of(sock), sim_url, **poll))
        async with serving(app, sock) as wb_url:
            wb = Running(app)
            await until(lambda: wb.hooks_registered is not None and wb.poller.first_success.is_set(),
                        15, "webhook registration and the first poll")
            yield Pair(sim_app.state.sim, sim_url, wb, wb_url)

def sender_idle(rt: Runtime) -> bool:
    assert rt.sender is not None
    return rt.sender.idle()

def polled_since(wb: Running, moment: float) -> bool:
    """Both the agents and the calls poll succeeded with a request sent after `moment`."""
    return all(wb.live.sources[s]["ok"] and (wb.live.sources[s]["at"] or 0) > moment
               for s in ("agents", "calls"))


def board(wb: Running) -> dict[str, Any]:
    snap = wb.snapshot(False)
    return {"agents": {a["ext"]: (a["state"], a["call_id"]) for a in snap["agents"]},
            "calls": {c["call_id"]: c["state"] for c in snap["calls"]}}

def expected(truth: dict[str, Any], seen: dict[str, Any]) -> dict[str, Any]:
    """The truth as the board should show it: agents never logged in today are not on it."""
    return {"agents": {a["ext"]: (a["state"], a["call_id"]) for a in truth["agents"]
                       if a["state"] != "offline" or a["ext"] in seen},
            "calls": {c["call_id"]: c["state"] for c in truth["calls"]}}

async def settle_and_compare(p: Pair, http: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any], int]:
    """Wait for a still world, drained webhooks and a fresh poll of each source; then compare.

    Returns (board, expected, live calls in the truth). A world that moved during the
    wait (a call ended on its own) starts the wait again.
    """
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline:
        version = p.sim.world.version
        await until(lambda: sender_idle(p.sim), 10, "webhooks drained")
        quiet = time.time() * 1000
        try:
            await until(functools.partial(polled_since, p.wb, quiet), 5, "a fresh poll")
        except AssertionError:
            continue  # a poll failed on a loaded machine and backs off: wait again, to the deadline
        truth = (await http.get(p.sim_url + "/_sim/truth")).json()
        if p.sim.world.version == version and sender_idle(p.sim):
            now = board(p.wb)
            return now, expected(truth, now["agents"]), len(truth["calls"])
    raise AssertionError("the simulated world never stood still long enough to compare")

async def converge_one(tmp: Path, seed: int) -> tuple[int, dict[str, int], int]:
    options = SimOptions(agents=12, seed=seed, rate=0, speed=6.0, prefill=False, hook_timeout=5.0,
                         **FAULTS)
    async with pair(tmp, options) as p, httpx.AsyncClient(timeout=5) as http:
        # Webhooks need to reach us: check the registration the wallboard made.
        registered = {h.event_name for h in await p.wb.pbx.list_events()}
        assert registered == {"ringing", "answered", "hangup", "cdr"}
        assert (await http.post(p.sim_url + "/_sim/traffic", json={"rate": 150})).status_code == 200
        await asyncio.sleep(TRAFFIC_SECONDS)  # the traffic phase itself, not a wait for a condition
        assert (await http.post(p.sim_url + "/_sim/traffic", json={"rate": 0})).status_code == 200
        now, want, live_calls = await settle_and_compare(p, http)
        assert now == want, f"seed {seed}: board differs from the truth:\n{diff(now, want)}"
        return seed, dict(p.sim.stats.hooks), live_calls

def diff(now: dict[str, Any], want: dict[str, Any]) -> str:
    lines = []
    for part in ("agents", "calls"):
        for key in sorted(set(now[part]) | set(want[part])):
            if now[part].get(key) != want[part].get(key):
                lines.append(f"  {part} {key}: board {now[part].get(key)} truth {want[part].get(key)}")
    return "\n".join(lines)

@pytest.mark.parametrize("batch", range(SEEDS // AT_ONCE))
async def test_board_equals_the_truth_after_the_next_poll_with_webhook_faults(
        batch: int, tmp_path: Path) -> None:
    seeds = range(batch * AT_ONCE + 1, (batch + 1) * AT_ONCE + 1)
    dirs = [tmp_path / str(seed) for seed in seeds]
    for d in dirs:
        d.mkdir()
    results = await asyncio.gather(*(converge_one(d, seed) for d, seed in zip(dirs, seeds, strict=True)))
    faults: dict[str, int] = {}
    for _, hooks, _ in results:
        for name, n in hooks.items():
            faults[name] = faults.get(name, 0) + n
    # The faults really happened: the board converged in spite of them, not for want of them.
    for name in ("sent", "duplicated", "dropped", "reordered", "delayed"):
        assert faults.get(name, 0) > 0, (name, faults)
    assert sum(live for _, _, live in results) > 0, "no call was live at the comparison"
    print(f"batch {batch}: webhooks {faults}; live calls compared {[r[2] for r in results]}")

async def _first_frame(ws: Any) -> dict[str, Any]:
    return dict(orjson.loads(await ws.recv()))

async def test_a_webhook_reaches_the_screen_within_a_second_with_slow_polls(tmp_path: Path) -> None:
    options = SimOptions(agents=4, seed=7, rate=0, prefill=False)
    async with pair(tmp_path, options, agents_interval=60.0, calls_interval=60.0) as p, \
            httpx.AsyncClient(timeout=5) as http:
        ws_url = p.wb_url.replace("http", "ws") + "/ws"
        async with websockets.connect(ws_url, origin=websockets.Origin(p.wb_url)) as ws:
            screen = ScreenCopy(await _first_frame(ws))
            start = time.perf_counter()
            answer = await http.post(p.sim_url + "/_sim/calls", json={"direction": "inbound", "exts": ["1001"]})
            assert answer.status_code == 200, answer.text
            call_id = answer.json()["legs"][0]["call_id"]
            agent = await wait_for_agent(ws, screen, "1001", lambda a: a["state"] == "ringing")
            took = time.perf_counter() - start
            print(f"webhook to screen: {took * 1000:.0f} ms")
            assert took < 1.0, took
            assert agent["call_id"] == call_id and screen.calls[call_id]["agent"] == "1001"
            polls = p.wb.poller.health["agents"].runs
            assert polls == 1, "the poll moved it, not the webhook"

async def wait_for_agent(ws: Any, screen: ScreenCopy, ext: str, match: Callable[[dict[str, Any]], bool],
                         within: float = 3.0) -> dict[str, Any]:
    """Apply the patches that come, as the board does, until the screen shows `ext` so."""
    async def scan() -> dict[str, Any]:
        while not (ext in screen.agents and match(screen.agents[ext])):
            frame = orjson.loads(await ws.recv())
            if frame.get("type") == "patch":
                screen.patch(frame)
        return screen.agents[ext]

    return await asyncio.wait_for(scan(), within)
