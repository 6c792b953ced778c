"""One tenant's PBX: its call center (world and traffic), logins, faults and webhooks.

The simulator serves one Center without --tenants and one per tenant with it; nothing
in a Center refers to another, so one tenant's calls, tokens and webhooks never reach
another's.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field

import httpx
import orjson

from wallboard.sim import views
from wallboard.sim.auth import Account
from wallboard.sim.cdrs import CdrStore
from wallboard.sim.clock import SimClock
from wallboard.sim.faults import Faults
from wallboard.sim.hooks import HookRegistry, HookSender
from wallboard.sim.stats import RequestStats
from wallboard.sim.tenants import Tenant
from wallboard.sim.traffic import Traffic
from wallboard.sim.world import World

# Real seconds; the loop also wakes at once after any action. An idle tenant costs a
# wake-up this often, so hundreds of them stay cheap.
MAX_IDLE_WAIT = 5.0


@dataclass(eq=False)
class Center:
    tenant: Tenant
    world: World
    traffic: Traffic
    clock: SimClock
    faults: Faults
    stats: RequestStats
    registry: HookRegistry
    accounts: list[Account]
    fault_rng: random.Random  # the /v1 faults of this tenant's requests
    hook_rng: random.Random  # the webhook faults of its deliveries
    sender: HookSender | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _pickups: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    _monitor_cache: tuple[int, bytes] = (-1, b"")
    _loop: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.world.on_pickup = self._picked_up

    @property
    def id(self) -> str:
        return self.tenant.tenant_id

    @property
    def api_key(self) -> str:
        return self.tenant.api_key

    @property
    def enabled(self) -> bool:
        return self.tenant.enabled

    @property
    def cdrs(self) -> CdrStore:
        return self.world.cdrs

    # -- time ------------------------------------------------------------------------

    def sync(self) -> None:
        """Bring the world up to the current sim time and send what it said."""
        self.world.advance(self.clock.now())
        self.flush()

    def flush(self) -> None:
        hooks = self.world.take_hooks()
        # A disabled tenant's world goes on, but its PBX calls nobody back.
        if self.sender is not None and hooks and self.enabled:
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

    def start(self, client: httpx.AsyncClient) -> None:
        """The clock loop and the webhook sender (the app's lifespan calls this)."""
        self.sender = HookSender(self.registry, faults=self.faults, stats=self.stats, rng=self.hook_rng,
                                 client=client)  # fmt: skip
        self.sender.start()
        self._loop = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        if self.sender is not None:
            await self.sender.stop()
            self.sender = None

    # -- answers -----------------------------------------------------------------------

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
