"""The screens of the benchmark, run in worker processes so their CPU is not the server's.

Three kinds: `screen` (a live /ws client that notes when each marked call first
arrives), `poll` (the peers' way: GET /api/state every `interval` seconds) and
`stalled` (a /ws client that completes the handshake and then never reads).

Clocks: time.time_ns() in every process of the one machine, so the poster's
timestamp and a screen's are comparable.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import re
import socket
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from typing import Any

import uvloop
from websockets.asyncio.client import connect

from bench.wire import Conn

# A marked event rings an agent with call_id "bk<n>": the call's key in a patch, its
# `call_id` in a state answer.
MARKER = re.compile(rb'"bk(\d+)"')
CONNECTS_AT_ONCE = 50


@dataclass
class Client:
    received: int = 0  # bytes
    messages: int = 0
    at_go: tuple[int, int] = (0, 0)
    at_stop: tuple[int, int] = (0, 0)
    seen: dict[int, int] = field(default_factory=dict)
    ready: bool = False
    error: str = ""
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # ready, or failed
    # Every client of the phase is ready: pollers start then, or the first would load
    # the server while the last still wait for their first answer (500 x 1.5 MB at M = 5,000).
    go: asyncio.Event = field(default_factory=asyncio.Event)

    def set_ready(self) -> None:
        self.ready = True
        self.settled.set()

    def fail(self, e: Exception) -> None:
        self.error = f"{type(e).__name__}: {e}"[:200]
        self.settled.set()

    def note(self, data: bytes, t: int) -> None:
        self.received += len(data)
        self.messages += 1
        if b'"bk' in data:
            for m in MARKER.findall(data):
                self.seen.setdefault(int(m), t)

    def mark(self) -> tuple[int, int]:
        return self.received, self.messages


@dataclass
class Job:
    kind: str  # "screen", "poll" or "stalled"
    port: int
    count: int
    interval: float = 1.0  # poll only
    seed: int = 0


def worker(job: Job, ready: Any, go: Event, stop: Event, results: Any) -> None:
    """Process entry: run `job.count` clients, say when all are ready, report at stop."""
    uvloop.install()
    results.put(asyncio.run(_run(job, ready, go, stop)))


async def _run(job: Job, ready: Any, go: Event, stop: Event) -> dict[str, Any]:
    clients = [Client() for _ in range(job.count)]
    gate = asyncio.Semaphore(CONNECTS_AT_ONCE)
    done = asyncio.Event()
    rng = random.Random(job.seed)
    run = {"screen": _screen, "poll": _poller, "stalled": _stalled}[job.kind]
    tasks = [asyncio.create_task(run(job, c, gate, done, rng.uniform(0, job.interval)))
             for c in clients]
    await asyncio.gather(*(c.settled.wait() for c in clients))
    ready.put(sum(c.ready for c in clients))
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, go.wait)
    for c in clients:
        c.at_go = c.mark()
        c.go.set()
    await loop.run_in_executor(None, stop.wait)
    for c in clients:
        c.at_stop = c.mark()
    done.set()
    await asyncio.wait(tasks, timeout=10)
    for task in tasks:
        task.cancel()
    ids, times, owner = array("q"), array("q"), array("l")
    for i, c in enumerate(clients):
        for k, t in c.seen.items():
            ids.append(k)
            times.append(t)
            owner.append(i)
    return {
        "pid": os.getpid(), "kind": job.kind, "count": job.count,
        "ready": sum(c.ready for c in clients), "errors": [c.error for c in clients if c.error][:3],
        "bytes": [c.at_stop[0] - c.at_go[0] for c in clients],
        "messages": [c.at_stop[1] - c.at_go[1] for c in clients],
        "ids": ids, "times": times, "owner": owner,
    }


async def _screen(job: Job, c: Client, gate: asyncio.Semaphore, done: asyncio.Event,
                  _phase: float) -> None:
    try:
        async with gate:
            ws = await connect(f"ws://127.0.0.1:{job.port}/ws", compression=None, max_size=None,
                               ping_interval=None, open_timeout=120, close_timeout=1)
        async with ws:
            reader = asyncio.create_task(_read(ws, c))
            await done.wait()
            reader.cancel()
    except Exception as e:  # reported, not raised: one failed screen must not hide the others
        c.fail(e)


async def _read(ws: Any, c: Client) -> None:
    while True:
        data = await ws.recv(decode=False)
        c.note(data, time.time_ns())
        if not c.ready:
            c.set_ready()


async def _poller(job: Job, c: Client, gate: asyncio.Semaphore, done: asyncio.Event,
                  phase: float) -> None:
    conn = Conn("127.0.0.1", job.port)
    try:
        async with gate:
            await conn.request("GET", "/api/state")
        c.set_ready()
        await c.go.wait()
        await asyncio.sleep(phase)
        next_at = time.monotonic()
        while not done.is_set():
            _, body, size = await conn.request("GET", "/api/state")
            t = time.time_ns()
            c.received += size - len(body)
            c.note(body, t)
            next_at += job.interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    except Exception as e:
        c.fail(e)
    finally:
        await conn.close()


async def _stalled(job: Job, c: Client, gate: asyncio.Semaphore, done: asyncio.Event,
                   _phase: float) -> None:
    """Handshake, then never read: a TV whose browser hung. A small receive buffer
    makes the server's side fill up within seconds."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    try:
        async with gate:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", job.port))
            reader, writer = await asyncio.open_connection(sock=sock)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{job.port}\r\nUpgrade: websocket\r\n"
                          f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n").encode())
            await reader.readuntil(b"\r\n\r\n")
            writer.transport.pause_reading()  # type: ignore[attr-defined]
        c.set_ready()
        await done.wait()
        writer.close()
    except Exception as e:
        c.fail(e)
