"""The PBX's side of an event: the webhook POST (timed) and, right after, the same
ring told to the synthetic PBX so that its next poll agrees with the webhook."""

from __future__ import annotations

import asyncio
import time

import orjson

from bench.servers import SECRET, Servers
from bench.wire import Conn


def caller(n: int) -> str:
    """A distinct caller per event, so each event is one more caller waiting (stats change)."""
    return f"09{n % 100_000_000:08d}"


def _hook(call_id: str, ext: str, number: str) -> bytes:
    return orjson.dumps({"state": "ringing", "call_id": call_id, "direction": "inbound",
                         "from_number": number, "to_number": ext, "hotline": "19001234"})


class Poster:
    def __init__(self, srv: Servers, first_id: int, connections: int = 4) -> None:
        self.srv = srv
        self.next_id = first_id
        self.sent: dict[int, int] = {}  # marker id -> time.time_ns() just before the POST
        self.statuses: dict[int, int] = {}
        self._pool: asyncio.Queue[Conn] = asyncio.Queue()
        for _ in range(connections):
            self._pool.put_nowait(Conn("127.0.0.1", srv.port))
        self._pbx = Conn("127.0.0.1", srv.pbx_port)
        self._pbx_lock = asyncio.Lock()
        self._path = f"/hooks/pbx/{SECRET}"

    def _take(self) -> tuple[int, str, str]:
        n = self.next_id
        self.next_id += 1
        return n, f"bk{n}", self.srv.exts[n % len(self.srv.exts)]

    async def _post(self, n: int, call_id: str, ext: str) -> None:
        conn = await self._pool.get()
        try:
            self.sent[n] = time.time_ns()
            status, _, _ = await conn.request("POST", self._path, _hook(call_id, ext, caller(n)))
            self.statuses[n] = status
        finally:
            self._pool.put_nowait(conn)

    async def _ring(self, rings: list[dict[str, str]]) -> None:
        async with self._pbx_lock:
            await self._pbx.request("POST", "/_bench/ring", orjson.dumps(rings))

    async def paced(self, rate: float, seconds: float) -> None:
        """`rate` events per second for `seconds`, each on its own schedule."""
        async def one(at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            n, call_id, ext = self._take()
            await self._post(n, call_id, ext)
            await self._ring([{"ext": ext, "call_id": call_id, "from": caller(n)}])

        start = time.monotonic() + 0.05
        await asyncio.gather(*(one(start + i / rate) for i in range(int(rate * seconds))))

    async def flood(self, total: int, connections: int) -> float:
        """`total` events as fast as `connections` keep-alive connections go; returns seconds."""
        for _ in range(connections - self._pool.qsize()):
            self._pool.put_nowait(Conn("127.0.0.1", self.srv.port))
        left = [total]
        rings: list[dict[str, str]] = []

        async def lane() -> None:
            while left[0] > 0:
                left[0] -= 1
                n, call_id, ext = self._take()
                await self._post(n, call_id, ext)
                rings.append({"ext": ext, "call_id": call_id, "from": caller(n)})

        t = time.perf_counter()
        await asyncio.gather(*(lane() for _ in range(connections)))
        elapsed = time.perf_counter() - t
        await self._ring(rings)
        return elapsed

    async def close(self) -> None:
        while not self._pool.empty():
            await self._pool.get_nowait().close()
        await self._pbx.close()
