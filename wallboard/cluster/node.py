"""Cluster mode, wired: one process among several sharing each tenant's board through Redis.

Per process one `Cluster` (the Redis client, this node's name, who else is alive); per
tenant one `TenantNode`, the engine's `SharedLine`:

- every node reads the tenant's patch stream into its `Mirror` and its hub: screens on
  any node get the same patches, and their snapshots are the line as published;
- the node that holds the tenant's lease leads: it carries on the line from the Redis
  snapshot and the patches after it (same epoch, same seq: screens notice nothing), or
  starts a new one when it cannot; it polls the PBX, keeps the webhooks registered,
  applies the intake (webhooks taken on any node) in order, and its publisher commits
  one patch at a time, each written by the fenced script with the intake events it
  acknowledges and, now and then, the snapshot;
- a node that loses the lease (it could not renew, or Redis refused a write) pauses its
  reads at once, drops what it had not published and follows.

Redis down: nothing is published; leaders step down within the lease (they cannot renew)
and do not poll the PBX on their own: a board that two nodes each fed would split the
line. Screens keep the last state and turn stale as the sources' times stop moving.
When Redis is back, the leases, the readers and the intake recover without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import orjson
from redis.asyncio import Redis

from wallboard.apply import LostTrack
from wallboard.audience import Audience
from wallboard.bus import Published
from wallboard.cluster.intake import Intake, IntakeEvent
from wallboard.cluster.lease import Leadership
from wallboard.cluster.members import Membership
from wallboard.cluster.mirror import Mirror
from wallboard.cluster.redis_bus import DOWN, Fenced, RedisBus, SeqGap
from wallboard.cluster.redis_client import connect
from wallboard.engine import Engine, Readiness, encode
from wallboard.hub import Hub
from wallboard.patches import Op, Patch
from wallboard.pbx.events import parse_event
from wallboard.poller import now_ms

log = logging.getLogger("wallboard.cluster")

SNAPSHOT_EVERY = 256  # patches; a new leader replays at most this many (the stream holds far more)
SNAPSHOT_EVERY_S = 5.0
HEARD_EVERY_S = 1.0  # the leader's word on its sources' last success, for every node's pings
T = TypeVar("T")


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{parts.hostname}:{parts.port}")
    return urlunsplit(parts)


def internal_form(patch: Patch) -> bytes | None:
    """The engine's own form of a patch, for a next leader's replay, when the screens' leaves
    something out: a call's `flow` (the merge key no screen is sent)."""
    if any(op[1] == "calls" and op[0] in ("put", "upd") and isinstance(op[3], dict) and "flow" in op[3]
           for op in patch.ops):
        return orjson.dumps({"ops": patch.ops})
    return None


class Cluster:
    """This process in the cluster: one Redis client and one membership for every tenant."""

    def __init__(self, url: str, node: str, lease_seconds: float, tenants: list[str]) -> None:
        self.url = url
        self.node = node
        self.lease_seconds = lease_seconds
        self.redis: Redis = connect(url)
        self.members = Membership(self.redis, node, tenants, lease_seconds=lease_seconds)

    async def start(self) -> None:
        try:
            async with asyncio.timeout(2.0):
                await self.redis.ping()  # type: ignore[misc]
        except DOWN as e:
            log.warning("Redis at %s is unreachable (%s): this node serves its screens what it has and "
                        "keeps trying", redacted(self.url), str(e) or type(e).__name__)
        await self.members.start()

    async def stop(self) -> None:
        await self.members.stop()
        await self.redis.aclose()

    def tenant(self, scope: str, engine: Engine, hub: Hub) -> TenantNode:
        lead = Leadership(self.redis, scope, self.node, self.lease_seconds,
                          prefer=lambda: self.members.prefers(scope),
                          hand_to=lambda: self.members.settled_owner(scope, self.lease_seconds))
        node = TenantNode(scope, engine, hub, lead, RedisBus(self.redis, scope, lead), Intake(self.redis, scope))
        self.members.add(scope)
        return node


class TenantNode:
    """One tenant on this node: its line as published, and its leadership when it has it."""

    def __init__(self, scope: str, engine: Engine, hub: Hub, lead: Leadership, bus: RedisBus,
                 intake: Intake) -> None:
        self.scope = scope
        self.engine = engine
        self.hub = hub
        self.lead = lead
        self.bus = bus
        self.intake = intake
        self.mirror = Mirror()
        self._leading = False
        self._wake = asyncio.Event()
        self._acks: list[str] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._forwarding: set[asyncio.Task[Any]] = set()
        self._fork = False  # the line in Redis lost patches: do not carry it on
        engine.bus = bus
        engine.shared = self
        hub.ready.clear()  # no snapshot before the line is loaded (_load)

    # -- SharedLine (engine.py) --

    @property
    def leading(self) -> bool:
        return self._leading

    def wake(self) -> None:
        self._wake.set()

    def snapshot(self, audience: Audience) -> dict[str, Any]:
        return self.mirror.snapshot(audience, now_ms())

    def snapshot_bytes(self, audience: Audience) -> tuple[int, bytes]:
        return self.mirror.snapshot_bytes(audience, now_ms())

    def call(self, call_id: str) -> dict[str, Any] | None:
        return self.mirror.call(call_id)

    def heartbeat(self) -> dict[str, Any]:
        return {"type": "ping", "now": now_ms(), "seq": self.mirror.seq, "at": self.mirror.heard}

    def forward_monitor(self, call_id: str, info: dict[str, Any] | None) -> None:
        body = orjson.dumps({"call_id": call_id, "info": info})
        task = asyncio.ensure_future(self._forward(body))
        self._forwarding.add(task)
        task.add_done_callback(self._forwarding.discard)

    def readiness(self) -> Readiness | None:
        """Ready once its screens can be served the line; a leader also once it read the PBX."""
        if not self.mirror.loaded:
            return Readiness(False, "no state read from Redis yet", None)
        return None if self._leading else Readiness(True, "", None)

    # -- every node --

    async def start(self) -> None:
        await self.bus.start()
        self._tasks = [asyncio.create_task(self._feed(), name=f"feed:{self.scope}"),
                       asyncio.create_task(self._roles(), name=f"roles:{self.scope}")]
        await self.lead.start()

    async def stop(self) -> None:
        """A leader gives its lease up first, so that another takes over at once."""
        await self.lead.stop()
        for task in [*self._tasks, *self._forwarding]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._forwarding, return_exceptions=True)
        self._tasks = []
        await self.bus.stop()

    async def since(self, epoch: str, seq: int) -> list[Published] | None:
        """For a screen resuming here: every patch after (epoch, seq) up to what this node's
        screens were sent, from this node's history or the stream; None: a snapshot."""
        try:
            async with asyncio.timeout(2.0):
                patches = await self.bus.since_async(epoch, seq)
        except DOWN:
            return None
        if patches is None or self.mirror.epoch != epoch:
            return None
        last = patches[-1].seq if patches else seq
        if self.bus.seq > last:  # delivered here while we asked: no await from here to subscribing
            more = self.bus.since(epoch, last)
            if more is None:
                return None
            patches += more
        return patches

    async def refresh_heard(self) -> None:
        """Before each ping: the leader's word on its sources (kept as it was if Redis is down)."""
        try:
            async with asyncio.timeout(1.0):
                heard = await self.bus.heard()
        except DOWN:
            return
        if heard is not None:
            self.mirror.hear(orjson.loads(heard))

    async def _feed(self) -> None:
        """The stream, into the mirror and the hub; a line it cannot follow is read again."""
        async with self.bus.subscribe() as items:
            await self._load()
            async for item in items:
                mirror = self.mirror
                if mirror.loaded and item.epoch == mirror.epoch and item.seq <= mirror.seq:
                    continue
                if mirror.apply(item):
                    self.hub.publish(item)
                    continue
                was = (mirror.epoch, mirror.seq)
                await self._load()
                log.info("scope %s: the line moved from %s/%d to %s/%d: every screen gets a snapshot",
                         self.scope, *was, mirror.epoch, mirror.seq)

    async def _load(self) -> None:
        backoff = 0.05
        while True:
            try:
                snap = await self.bus.load_snapshot()
                if snap is None or "state" not in snap.parts:
                    return  # nothing published yet: the first patch brings us here again
                patches = await self.bus.since_async(snap.epoch, snap.seq)
                if patches is not None:
                    self.mirror.load(orjson.loads(snap.parts["state"])["view"], patches)
                    self.hub.ready.set()
                    self.hub.resync_all()
                    await self.refresh_heard()
                    return
            except DOWN:
                pass
            except LostTrack as e:
                log.warning("scope %s: the snapshot in Redis and the patches after it disagree (%s)", self.scope, e)
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, 2.0)

    async def _forward(self, body: bytes) -> None:
        try:
            await self.intake.accept(body, now_ms(), kind="monitor")
        except DOWN as e:
            log.warning("scope %s: a monitor could not be passed to the leader (Redis: %s)", self.scope, e)

    # -- the leader --

    async def _roles(self) -> None:
        while True:
            await self.lead.won.wait()
            try:
                await self._lead()
            except SeqGap as e:
                # Redis lost patches screens may hold (a restart without them): a new line.
                log.warning("scope %s: %s, behind this leader: starting a new line", self.scope, e)
                self._fork = True
            except Fenced as e:
                log.warning("scope %s: %s", self.scope, e)
            except DOWN as e:
                # Redis went away while taking the lead: step down, the lease runs out anyway.
                self.lead.demote(f"Redis unreachable while taking the lead ({e})")
            except Exception:  # a bug must not leave a leader that does not lead
                log.exception("scope %s: the leader failed; stepping down", self.scope)
                self.lead.demote("failed")
                await asyncio.sleep(self.lead.lease_seconds)

    async def _lead(self) -> None:
        engine = self.engine
        engine.take_pending()
        self._acks = []
        await self._take_line()
        self._leading = True
        log.info("scope %s: this node leads: it reads the PBX and applies the webhooks (line %s, seq %d)",
                 self.scope, engine.live.epoch, engine.live.seq)
        engine.lead_jobs(True)
        # These run until the lead is lost; one that ends early raises what ended it.
        tasks = [asyncio.create_task(job) for job in (self._publisher(), self._consumer(), self._say_heard())]
        registering = asyncio.create_task(self._register()) if engine.settings.webhook.register else None
        lost = asyncio.create_task(self.lead.lost.wait())
        try:
            done, _ = await asyncio.wait([lost, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not lost:
                    task.result()
                    raise RuntimeError(f"{task.get_coro()!r} ended")
        finally:
            self._leading = False
            engine.lead_jobs(False)
            ending = [lost, *tasks, *([registering] if registering is not None else [])]
            for task in ending:
                task.cancel()
            await asyncio.gather(*ending, return_exceptions=True)
            engine.take_pending()
            self._acks = []
            engine.hooks_registered = None
            log.warning("scope %s: this node no longer leads: PBX reads stopped, following the line", self.scope)

    async def _take_line(self) -> None:
        """Carry on the line in Redis (same epoch and seq) or, when that cannot be, start one."""
        engine, bus = self.engine, self.bus
        head = await bus.head()
        snap = await bus.load_snapshot()
        fork, self._fork = self._fork, False
        if not fork and head is not None and snap is not None and snap.epoch == head[0] and "state" in snap.parts:
            replay = await bus.replay_async(snap.epoch, snap.seq)
            if replay is not None:
                try:
                    engine.live.restore(orjson.loads(snap.parts["state"]),
                                        [orjson.loads(form)["ops"] for _, form in replay], now_ms())
                except (LostTrack, KeyError, ValueError, TypeError) as e:
                    log.warning("scope %s: the line in Redis cannot be carried on (%s)", self.scope, e)
                else:
                    if engine.live.seq == head[1]:
                        return
        live = engine.fresh_state()
        # A new line shows the board at once: read agents and calls before its first snapshot.
        await asyncio.gather(engine.poller.poll_agents(), engine.poller.poll_calls())
        live.commit(engine.take_pending())
        await bus.save_snapshot(live.epoch, live.seq, {"state": orjson.dumps(live.export())})
        log.info("scope %s: a new line %s from seq %d (nothing to carry on): screens get a snapshot",
                 self.scope, live.epoch, live.seq)

    async def _publisher(self) -> None:
        """One patch at a time: commit only once the previous one is out."""
        since_snapshot, snapshot_at = 0, time.monotonic()
        while True:
            await self._wake.wait()
            self._wake.clear()
            ops: list[Op] = self.engine.take_pending()
            acks, self._acks = self._acks, []
            live = self.engine.live
            patch = live.commit(ops)
            if patch is None:
                if acks:
                    await self._retry(functools.partial(self.intake.ack, self.lead, acks))
                continue
            item = encode(live.epoch, patch)
            since_snapshot += 1
            snapshot = None
            if since_snapshot >= SNAPSHOT_EVERY or time.monotonic() - snapshot_at >= SNAPSHOT_EVERY_S:
                snapshot = {"state": orjson.dumps(live.export())}
                since_snapshot, snapshot_at = 0, time.monotonic()
            internal = internal_form(patch)
            await self._retry(functools.partial(self.bus.publish, item, snapshot=snapshot, acks=acks,
                                                internal=internal))

    async def _retry(self, write: Callable[[], Awaitable[T]]) -> T:
        """A write while Redis is away: again until it is back or the lease is gone (the
        script answers a write it already did as done)."""
        backoff = 0.02
        while True:
            try:
                return await write()
            except DOWN:
                if not self.lead.is_leader:
                    raise Fenced(f"scope {self.scope}: the lease ran out while Redis was unreachable") from None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 0.5)

    async def _consumer(self) -> None:
        async for batch in self.intake.batches(self.lead):
            for event in batch:
                self._apply(event)
                self._acks.append(event.id)
            self._wake.set()

    def _apply(self, event: IntakeEvent) -> None:
        engine = self.engine
        try:
            if event.kind == "monitor":
                asked = orjson.loads(event.body)
                engine.publish(engine.live.set_monitor(asked["call_id"], asked["info"], now_ms()))
            else:
                engine.submit(parse_event(event.body, engine.time, event.received))
        except Exception:  # checked on the node that took it; a state that refuses it must not stop the rest
            engine.count_webhook("failed")
            log.exception("scope %s: intake event %s could not be applied", self.scope, event.id)

    async def _say_heard(self) -> None:
        last = b""
        while True:
            heard = orjson.dumps(self.engine.live.last_heard())
            if heard != last:
                with contextlib.suppress(*DOWN):
                    async with asyncio.timeout(1.0):
                        if await self.bus.say_heard(heard):
                            last = heard
            await asyncio.sleep(HEARD_EVERY_S)

    async def _register(self) -> None:
        delay = 2.0
        while not await self.engine.register_hooks():
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)
