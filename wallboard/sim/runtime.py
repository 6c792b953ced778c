"""Everything a running simulator holds, and the loop that moves its world in (sim) time."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import orjson

from wallboard.sim import views
from wallboard.sim.auth import Account, TokenBook
from wallboard.sim.cdrs import CdrStore
from wallboard.sim.clock import LocalTime, SimClock
from wallboard.sim.faults import Faults
from wallboard.sim.hooks import HookRegistry, HookSender
from wallboard.sim.stats import RequestStats
from wallboard.sim.tenants import TenantBook
from wallboard.sim.traffic import Traffic
from wallboard.sim.world import World

MAX_IDLE_WAIT = 1.0  # real seconds; the loop also wakes at once after any action


@dataclass
class Runtime:
    world: World
    traffic: Traffic
    clock: SimClock
    local: LocalTime
    faults: Faults
    stats: RequestStats
    tokens: TokenBook
    registry: HookRegistry
    tenants: TenantBook
    accounts: list[Account]
    api_key: str
    secret_token: str
    sender: HookSender | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _pickups: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    _monitor_cache: tuple[int, bytes] = (-1, b"")

    def __post_init__(self) -> None:
        self.world.on_pickup = self._picked_up

    @property
    def cdrs(self) -> CdrStore:
        return self.world.cdrs

    def sync(self) -> None:
        """Bring the world up to the current sim time and send what it said."""
        self.world.advance(self.clock.now())
        self.flush()

    def flush(self) -> None:
        hooks = self.world.take_hooks()
        if self.sender is not None and hooks:
            self.sender.submit(hooks)
        self._wake.set()  # an action may have scheduled a step sooner than the loop's sleep

    async def run(self) -> None:
        while True:
            self._wake.clear()
            self.sync()
            self._wake.clear()
            due = self.world.next_due()
            wait = MAX_IDLE_WAIT
            if due is not None:
                wait = min(wait, max(0.0, self.clock.real_seconds(due - self.clock.now())))
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    def monitor_body(self) -> bytes:
        """Encoded once per world change: 5,000 agents cost a few ms to build."""
        version, body = self._monitor_cache
        if version != self.world.version:
            rows = views.monitor_rows(self.world)
            body = orjson.dumps({"data": rows, "total": len(rows)})
            self._monitor_cache = (self.world.version, body)
        return body

    def wait_pickup(self, flow_id: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pickups[flow_id] = future
        return future

    def _picked_up(self, flow_id: str) -> None:
        future = self._pickups.pop(flow_id, None)
        if future is not None and not future.done():
            future.set_result(None)
