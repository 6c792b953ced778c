"""The PBX simulator's app factory: SimOptions in, a Starlette app out."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware

from wallboard.sim import api, control, draws, traffic
from wallboard.sim.auth import Account, TokenBook
from wallboard.sim.cdrs import CdrStore
from wallboard.sim.center import Center
from wallboard.sim.clock import LocalTime, SimClock
from wallboard.sim.day import PROFILES, Rota
from wallboard.sim.faults import FaultMiddleware, Faults
from wallboard.sim.hooks import HookRegistry
from wallboard.sim.roster import build_roster, make_uuid
from wallboard.sim.runtime import Runtime
from wallboard.sim.stats import RequestStats
from wallboard.sim.tenants import Tenant, TenantBook
from wallboard.sim.world import World

MAX_AGENTS = 10_000
MAX_TENANTS = 5_000


def _default_accounts() -> list[tuple[str, str, str]]:
    return [("supervisor@sim", "supervisor", "admin"), ("viewer@sim", "viewer", "user")]


@dataclass
class SimOptions:
    host: str = "127.0.0.1"
    port: int = 8100
    agents: int = 20  # extensions 1001..1000+agents, plus 999 (the supervisors' phone), per tenant
    tenants: int = 0  # 0: one tenant as in SPEC section 2; N: t1..tN as in SPEC section 10
    seed: int = 1
    rate: float | None = None  # calls per minute (flat) or at the peak (day); None: draws.default_rate; 0: none
    profile: str = "flat"  # "flat": the same rate all day; "day": the curve, shifts and breaks of day.py
    floor: float = 0.1  # day profile: the quietest hour's share of the peak (and of the agents on shift)
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
        return draws.default_rate(self.agents, self.profile) if self.rate is None else self.rate

    def check(self) -> None:
        """ValueError naming the first bad option."""
        if not 1 <= self.agents <= MAX_AGENTS:
            raise ValueError(f"agents must be between 1 and {MAX_AGENTS}")
        if not 0 <= self.tenants <= MAX_TENANTS:
            raise ValueError(f"tenants must be between 0 and {MAX_TENANTS}")
        if self.speed <= 0:
            raise ValueError("speed must be greater than 0")
        if self.rate is not None and self.rate < 0:
            raise ValueError("rate must be 0 or more calls per minute")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}")
        if not 0 <= self.floor <= 1:
            raise ValueError("floor must be between 0 and 1")
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


def _accounts_for(options: SimOptions, tenant_id: str) -> list[tuple[str, str, str]]:
    """--tenants: `user@sim` (or a bare `user`) becomes `user@tK` in every tenant; `user@tK`
    stays in tK alone."""
    accounts = []
    for username, password, level in options.accounts:
        name, _, suffix = username.partition("@")
        if suffix in ("", "sim"):
            accounts.append((f"{name}@{tenant_id}", password, level))
        elif suffix == tenant_id:
            accounts.append((username, password, level))
    return accounts


def build_runtime(options: SimOptions) -> Runtime:
    """The whole simulator without HTTP: tests may drive it directly."""
    options.check()
    clock = SimClock(options.speed)
    local = LocalTime(options.timezone)
    single = options.tenants == 0

    def build_center(tenant: Tenant) -> Center:
        # The single tenant keeps the seeds it had before tenants; each tenant has its own.
        salt = f"{options.seed}" if single and not rt.centers else f"{options.seed}-{tenant.tenant_id}"

        def rng(name: str) -> random.Random:
            return random.Random(f"{name}-{salt}")

        now = clock.now()
        people = build_roster(options.agents, rng("roster"))
        workers = [p.ext for p in people if p.group >= 0]
        rota = Rota(workers, salt=salt, local=local, floor=options.floor)
        rate = options.effective_rate()
        backlog = None
        if options.prefill and options.profile == "day":
            backlog = functools.partial(traffic.prefill_day, rng("prefill"), rate=rate, floor=options.floor,
                                        rota=rota, start=local.midnight(now), end=now, people=people,
                                        fmt=local.format)  # fmt: skip
        elif options.prefill:
            backlog = functools.partial(traffic.prefill, rng("prefill"), rate=rate, start=local.midnight(now),
                                        end=now, people=people, fmt=local.format)  # fmt: skip
        world = World(
            people,
            rng=rng("world"),
            local=local,
            domain=tenant.domain,
            domain_id=make_uuid(rng("domain")),
            now=now,
            cdrs=CdrStore(backlog),
            logged_in_ratio=options.logged_in_ratio,
        )
        calls = traffic.Traffic(world, rota=rota, profile=options.profile, floor=options.floor)
        calls.set_rate(rate)
        if single and not rt.centers:
            logins = options.accounts
        else:
            logins = [*_accounts_for(options, tenant.tenant_id),
                      (f"admin@{tenant.tenant_id}", tenant.admin["password"], "admin")]  # fmt: skip
        return Center(
            tenant=tenant,
            world=world,
            traffic=calls,
            clock=clock,
            faults=options.faults(),
            stats=RequestStats(),
            registry=HookRegistry(rng("hooks")),
            accounts=[Account(u, p, lvl) for u, p, lvl in logins],
            fault_rng=rng("faults"),
            hook_rng=rng("hook-faults"),
        )

    rt = Runtime(
        clock=clock,
        local=local,
        tokens=TokenBook(),
        tenants=TenantBook(random.Random(f"tenants-{options.seed}")),
        secret_token=options.secret_token,
        build_center=build_center,
    )
    if single:
        first = rt.tenants.create("sim", domain=options.domain, api_key=options.api_key)
        assert first is not None
        rt.add(build_center(first))
    for index in range(1, options.tenants + 1):
        tenant_id = f"t{index}"
        made = rt.tenants.create(tenant_id, domain=f"{tenant_id}.{options.domain}",
                                 api_key=f"{options.api_key}-{tenant_id}")  # fmt: skip
        assert made is not None
        rt.add(build_center(made))
    return rt


def create_sim_app(options: SimOptions, *, http_client: httpx.AsyncClient | None = None) -> Starlette:
    """The lifespan runs each tenant's clock loop and webhook sender.

    Without the lifespan (httpx.ASGITransport) the world still moves on every request,
    but no webhook is sent.
    """
    rt = build_runtime(options)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        client = http_client or httpx.AsyncClient(timeout=options.hook_timeout)
        rt.start(client)
        try:
            yield
        finally:
            await rt.stop()
            if http_client is None:
                await client.aclose()

    app = Starlette(
        routes=[*api.build_routes(rt), *control.build_routes(rt)],
        middleware=[Middleware(FaultMiddleware, pick=rt.center_for)],
        lifespan=lifespan,
    )
    app.state.sim = rt
    return app
