"""The PBX simulator's app factory: SimOptions in, a Starlette app out."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware

from wallboard.sim import api, control, draws, traffic
from wallboard.sim.auth import Account, TokenBook
from wallboard.sim.cdrs import CdrStore
from wallboard.sim.clock import LocalTime, SimClock
from wallboard.sim.faults import FaultMiddleware, Faults
from wallboard.sim.hooks import HookRegistry, HookSender
from wallboard.sim.roster import build_roster, make_uuid
from wallboard.sim.runtime import Runtime
from wallboard.sim.stats import RequestStats
from wallboard.sim.tenants import TenantBook
from wallboard.sim.world import World

MAX_AGENTS = 10_000


def _default_accounts() -> list[tuple[str, str, str]]:
    return [("supervisor@sim", "supervisor", "admin"), ("viewer@sim", "viewer", "user")]


@dataclass
class SimOptions:
    host: str = "127.0.0.1"
    port: int = 8100
    agents: int = 20  # extensions 1001..1000+agents, plus 999 (the supervisors' phone)
    seed: int = 1
    rate: float | None = None  # calls per minute; None: agents*0.6 capped; 0: no traffic
    speed: float = 1.0  # sim clock multiplier
    api_key: str = "sim-api-key"
    secret_token: str = "sim-secret-token"
    accounts: list[tuple[str, str, str]] = field(default_factory=_default_accounts)
    token_lifetime: float = 3600.0
    timezone: str = "Asia/Ho_Chi_Minh"
    domain: str = "sim.tel4vn.com"
    logged_in_ratio: float = 0.85  # share of agents logged in at start
    prefill: bool = True  # today's CDRs from local midnight at the configured rate
    hook_timeout: float = 3.0  # seconds per webhook POST
    # Faults at start (all can be changed at run time through POST /_sim/faults):
    latency_ms: float = 0.0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_seconds: float = 30.0
    garbage_rate: float = 0.0
    hook_duplicate: float = 0.0
    hook_drop: float = 0.0
    hook_delay: float = 0.0
    hook_delay_seconds: float = 2.0
    hook_reorder: float = 0.0

    def effective_rate(self) -> float:
        return draws.default_rate(self.agents) if self.rate is None else self.rate

    def check(self) -> None:
        """ValueError naming the first bad option."""
        if not 1 <= self.agents <= MAX_AGENTS:
            raise ValueError(f"agents must be between 1 and {MAX_AGENTS}")
        if self.speed <= 0:
            raise ValueError("speed must be greater than 0")
        if self.rate is not None and self.rate < 0:
            raise ValueError("rate must be 0 or more calls per minute")
        if self.token_lifetime <= 0:
            raise ValueError("token_lifetime must be greater than 0")
        for username, _, level in self.accounts:
            if not username or not level:
                raise ValueError("accounts need USER:PASSWORD:LEVEL")
        self.faults()  # validates the fault fields

    def faults(self) -> Faults:
        faults = Faults()
        names = {f.name for f in dataclasses.fields(Faults)} - {"outage_until"}
        faults.update({n: getattr(self, n) for n in names if hasattr(self, n)})
        return faults


def build_runtime(options: SimOptions) -> Runtime:
    """The whole simulator without HTTP: tests may drive it directly."""
    options.check()
    clock = SimClock(options.speed)
    local = LocalTime(options.timezone)
    now = clock.now()
    people = build_roster(options.agents, random.Random(f"roster-{options.seed}"))
    cdrs = CdrStore()
    world = World(
        people,
        rng=random.Random(f"world-{options.seed}"),
        local=local,
        domain=options.domain,
        domain_id=make_uuid(random.Random(f"domain-{options.seed}")),
        now=now,
        cdrs=cdrs,
        logged_in_ratio=options.logged_in_ratio,
    )
    rate = options.effective_rate()
    if options.prefill:
        traffic.prefill(
            cdrs,
            random.Random(f"prefill-{options.seed}"),
            rate=rate,
            start=local.midnight(now),
            end=now,
            people=people,
            fmt=local.format,
        )
    calls = traffic.Traffic(world)
    calls.set_rate(rate)
    faults = options.faults()
    return Runtime(
        world=world,
        traffic=calls,
        clock=clock,
        local=local,
        faults=faults,
        stats=RequestStats(),
        tokens=TokenBook(faults),
        registry=HookRegistry(random.Random(f"hooks-{options.seed}")),
        tenants=TenantBook(random.Random(f"tenants-{options.seed}")),
        accounts=[Account(u, p, lvl) for u, p, lvl in options.accounts],
        api_key=options.api_key,
        secret_token=options.secret_token,
    )


def create_sim_app(options: SimOptions, *, http_client: httpx.AsyncClient | None = None) -> Starlette:
    """The lifespan runs the world's clock loop and the webhook sender.

    Without the lifespan (httpx.ASGITransport) the world still moves on every request,
    but no webhook is sent.
    """
    rt = build_runtime(options)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = http_client or httpx.AsyncClient(timeout=options.hook_timeout)
        rt.sender = HookSender(
            rt.registry,
            faults=rt.faults,
            stats=rt.stats,
            rng=random.Random(f"hook-faults-{options.seed}"),
            client=client,
        )
        rt.sender.start()
        loop = asyncio.create_task(rt.run())
        try:
            yield
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
            await rt.sender.stop()
            rt.sender = None
            if http_client is None:
                await client.aclose()

    fault_rng = random.Random(f"faults-{options.seed}")
    app = Starlette(
        routes=[*api.build_routes(rt), *control.build_routes(rt)],
        middleware=[Middleware(FaultMiddleware, faults=rt.faults, stats=rt.stats, rng=fault_rng)],
        lifespan=lifespan,
    )
    app.state.sim = rt
    return app
