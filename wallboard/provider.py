"""The provider's view: one row per tenant, live, with nothing personal on it.

Every second (and so within a second of any change) each tenant's row is read off its
live state: the health of its sources, agents online / ringing / on a call, active calls,
callers waiting, the longest wait, service level and calls answered today. Rows hold
counts and times only — no phone number, agent or caller name, or call id is ever read
into them, so none can reach a provider's screen. Changed rows go out as patches on the
same machinery as a board (a bus, a hub, `put`/`upd`/`del` ops, one seq line).

A row's `trouble` orders the view: refused (the PBX refuses its key) before stale (a
source failing or old) before waiting callers over the limit before the rest.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import orjson
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from wallboard.audience import Audience
from wallboard.bus import LocalBus, Published
from wallboard.hub import PING_EVERY_S, Hub
from wallboard.patches import Op, compact, del_op, record_op, set_op
from wallboard.poller import now_ms
from wallboard.tenancy import SWEEP_EVERY_S, Parts, Site

ROW_FIELDS = ("name", "health", "error", "webhooks_at", "agents_online", "agents_ringing", "agents_oncall",
              "active_calls", "waiting", "longest_wait_since", "service_level", "answered_today", "trouble")
REFRESH_EVERY_S = 1.0  # the rows are read again this often
REFUSED_CODES = ("INVALID_CREDENTIALS", "UNAUTHORIZED", "FORBIDDEN", "TENANT_DISABLED", "HTTP_401", "HTTP_403")


def tenant_state(parts: Parts) -> dict[str, Any]:
    """A tenant's state as its screens are shown it: the engine's on the one process or the
    leader, the published line's copy on a node that does not lead (never stale there)."""
    return parts.engine.snapshot(Audience.SUPERVISOR)


def tenant_row(name: str, state: dict[str, Any], waiting_warn_s: int, now: int) -> dict[str, Any]:
    """One tenant's figures from its state (`tenant_state`). Only counts, times and its
    configured name: never a number, an agent's or a caller's name, or a call id."""
    states = {"idle": 0, "ringing": 0, "oncall": 0}
    for agent in state["agents"]:
        if agent["state"] in states:
            states[agent["state"]] += 1
    stats = state.get("stats") or {}
    waiting, since = stats.get("waiting", 0), stats.get("longest_wait_since")
    sources = state.get("sources") or {}
    polled = {s: sources.get(s) or {} for s in ("agents", "calls", "status", "cdr")}
    errors = [v.get("error") or "" for v in polled.values() if not v.get("ok")]
    if any(code in error for error in errors for code in REFUSED_CODES):
        health = "refused"
    elif not all(polled[s].get("ok") for s in ("agents", "calls")):
        health = "stale" if polled["agents"].get("at") is not None else "starting"
    else:
        health = "ok"
    longest = (now - since) // 1000 if since else 0
    trouble = {"refused": 0, "stale": 1, "starting": 2}.get(health, 4)
    if health == "ok" and waiting and longest >= waiting_warn_s:
        trouble = 3
    return {
        "name": name, "health": health, "error": errors[0][:120] if errors else None,
        "webhooks_at": (sources.get("webhooks") or {}).get("at"),
        "agents_online": sum(states.values()), "agents_ringing": states["ringing"],
        "agents_oncall": states["oncall"], "active_calls": len(state["calls"]),
        "waiting": waiting, "longest_wait_since": since,
        "service_level": stats.get("service_level"),
        "answered_today": int((state.get("status") or {}).get("counts", {}).get("ANSWERED", 0)),
        "trouble": trouble,
    }


class ProviderBoard:
    """The rows, their seq line and their bus: a board whose records are tenants."""

    def __init__(self, site: Site, *, clock: Callable[[], int] = now_ms) -> None:
        self.site = site
        self.clock = clock
        self.epoch = secrets.token_hex(6)
        self.seq = 0
        self.rows: dict[str, dict[str, Any]] = {}
        self.bus = LocalBus(self.epoch)

    def refresh(self) -> None:
        """Read every tenant's row again; publish what changed as one patch."""
        now = self.clock()
        ops: list[Op] = []
        fresh: dict[str, dict[str, Any]] = {}
        for tenant_id, parts in self.site.tenants.items():
            row = {"id": tenant_id, **tenant_row(self.site.names.get(tenant_id, tenant_id), tenant_state(parts),
                                                  parts.settings.display.waiting_warn_seconds, now)}
            fresh[tenant_id] = row
            ops += record_op("tenants", tenant_id, self.rows.get(tenant_id), row)
        ops += [del_op("tenants", gone) for gone in self.rows.keys() - fresh.keys()]
        self.rows = fresh
        ops = compact(ops)
        if not ops:
            return
        self.seq += 1
        body = orjson.dumps({"type": "patch", "seq": self.seq, "ops": [*ops, set_op("now", now)]})
        self.bus.publish_nowait(Published(self.epoch, self.seq, dict.fromkeys(Audience, body)))

    def snapshot(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "seq": self.seq, "now": self.clock(), "tenants": list(self.rows.values())}

    def snapshot_bytes(self, audience: Audience) -> tuple[int, bytes]:
        return self.seq, orjson.dumps({"type": "snapshot", "epoch": self.epoch, "seq": self.seq,
                                       "state": self.snapshot()})


class ProviderView:
    """The board, the hub of the provider's screens, and their upkeep on the site's scheduler."""

    def __init__(self, site: Site) -> None:
        self.board = ProviderBoard(site)
        self.hub = Hub(self.board.snapshot_bytes, queue_size=site.settings.server.ws_queue_size)
        self._delivering: asyncio.Task[None] | None = None

    def start(self, scheduler: AsyncIOScheduler) -> None:
        self._delivering = asyncio.get_running_loop().create_task(self.hub.run(self.board.bus))
        # Coroutines, all of them: APScheduler runs a plain function on a worker thread.
        for job, seconds, name in ((self._refresh, REFRESH_EVERY_S, "provider"),
                                   (self._ping, PING_EVERY_S, "provider:ping"),
                                   (self._sweep, SWEEP_EVERY_S, "provider:sweep")):
            scheduler.add_job(job, "interval", seconds=seconds, id=name, max_instances=1, coalesce=True)

    async def stop(self) -> None:
        await self.hub.close_all()
        if self._delivering is not None:
            self._delivering.cancel()
            await asyncio.gather(self._delivering, return_exceptions=True)

    async def _refresh(self) -> None:
        self.board.refresh()

    async def _ping(self) -> None:
        self.hub.ping({"type": "ping", "now": self.board.clock(), "seq": self.board.seq})

    async def _sweep(self) -> None:
        self.hub.sweep()
