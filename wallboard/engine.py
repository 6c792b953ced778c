"""The engine: the one owner of the live state.

It reads the PBX (the poller), takes the webhooks' events (`submit`), keeps the clock
ticking, and commits each turn's changes as one patch on the bus. Everything else (the
web layer, the hub) reaches the state only through this narrow interface:

    submit(event)            a parsed webhook event
    set_monitor(call, info)  a supervisor joined (or left) a call
    call(call_id)            one live call, or None
    health()                 is the board ready, and why not (health.py: each source's)
    snapshot(audience)       the state as that audience sees it (dict, or encoded bytes)
    heartbeat()              the ping screens get between patches

Only the event loop writes the state. What changes in one turn of the loop goes out as
one patch at its end, encoded once per audience.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import orjson
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from wallboard.audience import SUPERVISOR_KEYS, Audience, screen_ops, screen_state
from wallboard.bus import LocalBus, PatchBus, Published
from wallboard.patches import Op, Patch, positional, snapshot_message
from wallboard.pbx.client import PbxClient
from wallboard.pbx.errors import PbxError
from wallboard.pbx.events import CallEvent
from wallboard.pbx.times import PbxTime
from wallboard.poller import Poller, PollObserver, now_ms
from wallboard.registration import callback_url, load_secret, register
from wallboard.settings import Settings
from wallboard.state import LiveState
from wallboard.views import Narrowing, Noted, View, narrow_ops, narrow_state
from wallboard.watch import Watch

log = logging.getLogger("wallboard.engine")

TICK_EVERY_S = 1.0
# Teams' and hotlines' figures and the thresholds' levels (watch.py), at most this often:
# a pass over every agent and call, and a patch of each group that changed, twice a second
# however many events come (not once per event: 2,000 agents cost a millisecond a pass).
WATCH_EVERY_S = 0.5
LEADER_JOBS = ("agents", "calls", "status", "cdr", "tick", "watch")  # run by the leader of the scope only
AT_ONCE = ("agents", "calls", "cdr")  # run as soon as a node takes the lead


@dataclass(frozen=True, slots=True)
class Readiness:
    """What /readyz says: ready once the first agents poll succeeded and the PBX answers."""

    ready: bool
    reason: str
    webhooks: dict[str, str] | None


class SharedLine(Protocol):
    """The patch line as several processes share it (cluster/node.py). A node serves its
    screens from the line as published, whether it leads or not; only the leader's
    engine reads the PBX and writes the state, and its publisher commits."""

    @property
    def leading(self) -> bool: ...

    def wake(self) -> None:
        """There are ops to commit: the leader's publisher commits them when it can."""

    def snapshot(self, audience: Audience) -> dict[str, Any]: ...

    def snapshot_bytes(self, audience: Audience) -> tuple[int, bytes]: ...

    def call(self, call_id: str) -> dict[str, Any] | None: ...

    def heartbeat(self) -> dict[str, Any]: ...

    def forward_monitor(self, call_id: str, info: dict[str, Any] | None) -> None:
        """A supervisor's action on a node that does not lead: to the leader."""

    def readiness(self) -> Readiness | None:
        """A follower's; None on the leader (the engine's own)."""


class Engine:
    def __init__(self, settings: Settings, pbx: PbxClient, *, bus: LocalBus | None = None,
                 observe_poll: PollObserver | None = None, tenant: str | None = None) -> None:
        self.settings = settings
        self.pbx = pbx
        self.time = PbxTime(settings.pbx.timezone)
        self.live = LiveState(self.time, sla_seconds=settings.display.sla_seconds, now_ms=now_ms())
        self._local = bus or LocalBus(self.live.epoch)
        self.bus: PatchBus = self._local
        self.shared: SharedLine | None = None  # cluster mode (cluster/node.py)
        self._scheduler: AsyncIOScheduler | None = None
        self._prefix = ""
        self.poller = Poller(settings, pbx, self.live, self.publish, observe_poll)
        self.cdr_listeners: list[Callable[[CallEvent], None]] = []  # the history's counts (history/recorder.py)
        self.tenant = tenant  # None: the deployment's only tenant, at the root of the URL space
        self.webhook_secret = load_secret(settings.webhook.secret, Path(settings.storage.path).parent, tenant)
        self.callback_url = callback_url(settings.server.public_url, self.webhook_secret, tenant)
        self.hooks_registered: dict[str, str] | None = None
        self._snapshots: dict[tuple[int, Audience, int], bytes] = {}
        self._pending: list[Op] = []
        self._flush_soon: asyncio.Handle | None = None
        self._registering: asyncio.Task[None] | None = None
        self.live.wrapup_ms = settings.display.wrapup_seconds * 1000
        self.watch = Watch(settings)
        self.narrowing = Narrowing()
        self._view_snapshots: dict[tuple[int, Audience, int, View], bytes] = {}

    # -- the narrow interface ---------------------------------------------------

    @property
    def seq(self) -> int:
        return self.live.seq

    @property
    def epoch(self) -> str:
        return self.live.epoch

    def submit(self, event: CallEvent) -> None:
        self.publish(self.live.apply_event(event))
        if event.state == "cdr":
            for listener in self.cdr_listeners:
                listener(event)

    def set_monitor(self, call_id: str, info: dict[str, Any] | None) -> None:
        if self.shared is not None and not self.shared.leading:
            self.shared.forward_monitor(call_id, info)
            return
        self.publish(self.live.set_monitor(call_id, info, now_ms()))

    def call(self, call_id: str) -> dict[str, Any] | None:
        if self.shared is not None:
            return self.shared.call(call_id)
        return self.live.calls.get(call_id)

    def count_webhook(self, result: str) -> None:
        if result in ("rejected", "failed"):
            self.live.health.webhooks["rejected"] += 1

    def health(self) -> Readiness:
        if self.shared is not None and (theirs := self.shared.readiness()) is not None:
            return theirs
        failing = {s: self.live.health[s].error or "no answer yet" for s in ("agents", "calls")
                   if not self.live.health[s].ok}
        if not self.poller.first_success.is_set() or failing:
            reason = "; ".join(f"{s}: {e}" for s, e in failing.items()) or "first poll pending"
            return Readiness(False, reason, self.hooks_registered)
        return Readiness(True, "", self.hooks_registered)

    def snapshot(self, audience: Audience) -> dict[str, Any]:
        """The state as `audience` sees it, exactly at the current seq."""
        if self.shared is not None:
            return self.shared.snapshot(audience)
        self.flush()
        return screen_state(self.live.snapshot(now_ms()), audience)

    def snapshot_bytes(self, audience: Audience, view: View | None = None) -> tuple[int, bytes]:
        """The snapshot message, encoded once per seq, audience (and view: a team's or a
        hotline's screens, views.py) and second however many screens ask."""
        if view is not None:
            # The team's members as its screens are told them (`teams`): the same on a node
            # that does not lead, whose own watch never runs.
            state = self.snapshot(audience)
            seq = state["seq"]
            key_ = (seq, audience, now_ms() // 1000, view)
            body = self._view_snapshots.get(key_)
            if body is None:
                if len(self._view_snapshots) > 64:
                    self._view_snapshots.clear()
                members = {name: frozenset(team.get("extensions", ())) for name, team in state["teams"].items()}
                body = orjson.dumps(snapshot_message(seq, narrow_state(state, view, members)))
                self._view_snapshots[key_] = body
            return seq, body
        if self.shared is not None:
            return self.shared.snapshot_bytes(audience)
        self.flush()
        key = (self.live.seq, audience, now_ms() // 1000)
        body = self._snapshots.get(key)
        if body is None:
            self._snapshots.clear()
            body = self._snapshots[key] = orjson.dumps(snapshot_message(self.live.seq, self.snapshot(audience)))
        return self.live.seq, body

    def heartbeat(self) -> dict[str, Any]:
        if self.shared is not None:
            return self.shared.heartbeat()
        return {"type": "ping", "now": now_ms(), "seq": self.live.seq, "at": self.live.last_heard()}

    # -- the one place that turns a change into a patch ------------------------

    def publish(self, ops: list[Op]) -> None:
        """Queue a change for the screens; everything published in this turn of the
        event loop goes out as one patch at its end.

        Under load a turn holds many webhooks, so the batch grows with the rate and the
        cost per screen stays one frame per turn; a lone change waits for nothing. A
        snapshot sends the batch first, so it shows exactly its seq: a patch may leave
        out what a screen can tell from the state before it (patches.py).
        """
        if not ops:
            return
        self._pending += ops
        if self._flush_soon is not None:
            return
        try:
            self._flush_soon = asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no loop (a script or a unit test): at once
            self.flush()

    def flush(self) -> None:
        """Commit the batch: at the end of the turn, or before a snapshot is taken."""
        if self._flush_soon is not None:
            self._flush_soon.cancel()
            self._flush_soon = None
        if not self._pending:
            return
        if self.shared is not None:
            self.shared.wake()
            return
        patch = self.live.commit(self._pending)
        self._pending = []
        if patch is not None:
            noted = self.narrowing.note(patch.ops, self.live.calls, self.watch.members)
            self._local.publish_nowait(encode(self.live.epoch, patch, noted))

    def take_pending(self) -> list[Op]:
        """The ops not committed yet (cluster mode: the publisher commits them)."""
        pending, self._pending = self._pending, []
        return pending

    def fresh_state(self) -> LiveState:
        """A new line (a new epoch at seq 0), for a leader that cannot carry on the old one."""
        self.live = LiveState(self.time, sla_seconds=self.settings.display.sla_seconds, now_ms=now_ms(),
                              health=self.live.health)
        self.poller.live = self.live
        self._pending = []
        self.live.wrapup_ms = self.settings.display.wrapup_seconds * 1000
        self.narrowing.forget()
        return self.live

    # -- running ----------------------------------------------------------------

    def start(self, scheduler: AsyncIOScheduler, phase: float = 0.0, *, lead: bool = True) -> None:
        """Schedule the reads (at `phase`, 0 to 1, of their intervals: tenants spread theirs)
        and the tick, and register the webhooks. `lead=False` (cluster mode): the reads and
        the tick wait paused until this node leads the scope (`lead_jobs`)."""
        prefix = "" if self.tenant is None else f"{self.tenant}:"
        self._scheduler, self._prefix = scheduler, prefix
        self.poller.schedule(scheduler, phase=phase, prefix=prefix)
        scheduler.add_job(self.tick, "interval", seconds=TICK_EVERY_S, id=prefix + "tick", max_instances=1,
                          coalesce=True)
        scheduler.add_job(self.look, "interval", seconds=WATCH_EVERY_S, id=prefix + "watch", max_instances=1,
                          coalesce=True)
        if not lead:
            self.lead_jobs(False)
        elif self.settings.webhook.register:
            self._registering = asyncio.get_running_loop().create_task(self._register_until_done())

    def lead_jobs(self, leading: bool) -> None:
        """Cluster mode: the reads and the tick run on the scope's leader only; a new leader
        reads agents, calls and CDRs at once."""
        assert self._scheduler is not None, "start() first"
        for name in LEADER_JOBS:
            job = self._scheduler.get_job(self._prefix + name)
            if job is None:
                continue
            if not leading:
                job.pause()
            elif name in AT_ONCE:
                job.modify(next_run_time=datetime.now().astimezone() + timedelta(seconds=0.01))
            else:
                job.resume()

    async def stop(self) -> None:
        """End the registration and the reads in flight (they use the HTTP client the caller
        closes next). The scheduler's jobs are paused by the caller before this."""
        if self._registering is not None and not self._registering.done():
            self._registering.cancel()
            try:
                await self._registering
            except asyncio.CancelledError:
                pass
        await self.poller.stop()

    async def tick(self) -> None:
        now = now_ms()
        self.publish(self.live.tick(now) + self.live.expire_sources(self.poller.max_ages(), now)
                     + self.live.end_wrapups(now))

    async def look(self) -> None:
        """Teams' and hotlines' figures and the thresholds' levels, now (watch.py)."""
        self.publish(self.watch.refresh(self.live, now_ms()))

    async def register_hooks(self) -> bool:
        try:
            self.hooks_registered = await register(self.pbx, self.callback_url, self.webhook_secret,
                                                   self.settings.webhook.events)
        except PbxError as e:
            log.warning("webhook registration failed, will retry: %s", e)
            return False
        log.info("webhooks registered: %s", ", ".join(f"{k} {v}" for k, v in self.hooks_registered.items()))
        return True

    async def _register_until_done(self) -> None:
        delay = 2.0
        while not await self.register_hooks():
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)


def encode(epoch: str, patch: Patch, noted: Noted | None = None) -> Published:
    """A committed patch as each audience receives it: `{"type": "patch", "seq", "ops"}`;
    with `noted`, the ops each audience of a team's or a hotline's screens gets (views.py),
    worked out only for the views that have screens (hub.py)."""
    ops = patch.ops if patch.wire is None else patch.wire

    def body(audience: Audience) -> bytes:
        return orjson.dumps({"type": "patch", "seq": patch.seq, "ops": positional(screen_ops(ops, audience))})

    whole = body(Audience.WHOLE)
    # Most patches say nothing of monitors: supervisors then get the same bytes.
    private = any(op[0] in ("set", "merge") and op[1] in SUPERVISOR_KEYS for op in ops)
    def narrow(audience: Audience, view: View) -> list[Op] | None:
        assert noted is not None
        kept = narrow_ops(ops, noted, view)
        return None if kept is None else positional(screen_ops(kept, audience))

    return Published(epoch, patch.seq, {Audience.SUPERVISOR: body(Audience.SUPERVISOR) if private else whole,
                                        Audience.WHOLE: whole, Audience.MASKED: body(Audience.MASKED)},
                     narrow=narrow if noted is not None else None)
