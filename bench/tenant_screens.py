"""The screens of the tenants phase, in worker processes: each a live `/t/{id}/ws` client of
one tenant, sending the Origin a browser on the board's page would send (the public URL),
noting when each marked call first shows. A marked call is a scripted call from the
caller number `09` + eight digits (the marker), unique over the run."""

from __future__ import annotations

import asyncio
import os
import re
import time
from array import array
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from typing import Any

import uvloop
from websockets.asyncio.client import connect
from websockets.typing import Origin

MARKER = re.compile(rb'"09(\d{8})"')
CONNECTS_AT_ONCE = 50


def marker_number(n: int) -> str:
    return f"09{n:08d}"


@dataclass(frozen=True)
class ScreensJob:
    port: int
    origin: str
    tenants: tuple[str, ...]  # one screen per entry


def worker(job: ScreensJob, ready: Any, stop: Event, results: Any) -> None:
    """Process entry: connect every screen, say how many are up, report at `stop`."""
    uvloop.install()
    results.put(asyncio.run(_run(job, ready, stop)))


async def _run(job: ScreensJob, ready: Any, stop: Event) -> dict[str, Any]:
    seen: list[dict[int, int]] = [{} for _ in job.tenants]
    errors: list[str] = []
    up = [asyncio.Event() for _ in job.tenants]
    done = asyncio.Event()
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)

    async def screen(i: int, tenant: str) -> None:
        try:
            async with gate:
                ws = await connect(f"ws://127.0.0.1:{job.port}/t/{tenant}/ws", origin=Origin(job.origin),
                                   proxy=None, compression=None, max_size=None, ping_interval=None,
                                   open_timeout=120, close_timeout=1)
            async with ws:
                reader = asyncio.create_task(read(i, ws))
                await done.wait()
                reader.cancel()
        except Exception as e:  # reported, not raised: one failed screen must not hide the others
            errors.append(f"{tenant}: {type(e).__name__}: {e}"[:200])
            up[i].set()

    async def read(i: int, ws: Any) -> None:
        mine = seen[i]
        while True:
            data = await ws.recv(decode=False)
            t = time.time_ns()
            up[i].set()
            if b'"09' in data:
                for m in MARKER.findall(data):
                    mine.setdefault(int(m), t)

    tasks = [asyncio.create_task(screen(i, t)) for i, t in enumerate(job.tenants)]
    await asyncio.gather(*(e.wait() for e in up))
    ready.put(len(job.tenants) - len(errors))
    await asyncio.get_running_loop().run_in_executor(None, stop.wait)
    done.set()
    await asyncio.wait(tasks, timeout=10)
    for task in tasks:
        task.cancel()
    ids, times, owner = array("q"), array("q"), array("l")
    for i, marks in enumerate(seen):
        for k, t in marks.items():
            ids.append(k)
            times.append(t)
            owner.append(i)
    return {"pid": os.getpid(), "tenants": job.tenants, "errors": errors[:3], "failed": len(errors),
            "ids": ids, "times": times, "owner": owner}
