"""Webhook registrations (/v1/event) and their delivery, with the webhook faults applied."""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from wallboard.sim.faults import Faults
from wallboard.sim.roster import make_uuid
from wallboard.sim.stats import RequestStats
from wallboard.sim.world import HookEvent

EVENTS = ("ringing", "answered", "hangup", "cdr")
MAX_QUEUE = 10_000
REORDER_HOLD_SECONDS = 1.0  # a held-back webhook goes out after this even if none follows


@dataclass(slots=True)
class Registration:
    event_domain_uuid: str
    event_name: str
    callback_url: str
    callback_apikey: str


class HookRegistry:
    """The vendor keeps every registration, duplicates included."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.items: list[Registration] = []

    def add(self, event: str, callback_url: str, callback_apikey: str) -> Registration:
        registration = Registration(make_uuid(self.rng), event, callback_url, callback_apikey)
        self.items.append(registration)
        return registration

    def remove(self, event_domain_uuid: str) -> bool:
        kept = [r for r in self.items if r.event_domain_uuid != event_domain_uuid]
        removed = len(kept) != len(self.items)
        self.items = kept
        return removed


_Delivery = tuple[Registration, dict[str, Any]]


class HookSender:
    """One worker posts in order; duplicate/drop/delay/reorder faults bend that order on purpose."""

    def __init__(
        self,
        registry: HookRegistry,
        *,
        faults: Faults,
        stats: RequestStats,
        rng: random.Random,
        client: httpx.AsyncClient,
    ) -> None:
        self.registry = registry
        self.faults = faults
        self.stats = stats
        self.rng = rng
        self.client = client
        self._queue: asyncio.Queue[_Delivery] = asyncio.Queue()
        self._held: _Delivery | None = None
        self._worker: asyncio.Task[None] | None = None
        self._late: set[asyncio.Task[None]] = set()
        self._posting = 0

    def idle(self) -> bool:
        """Nothing queued, held back, delayed or on its way."""
        return self._queue.empty() and self._held is None and not self._late and not self._posting

    def submit(self, events: list[HookEvent]) -> None:
        for event in events:
            for registration in self.registry.items:
                if registration.event_name != event.state:
                    continue
                if self._queue.qsize() >= MAX_QUEUE:
                    self.stats.hooks["overflow"] += 1
                    continue
                self._queue.put_nowait((registration, event.payload))

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        tasks = [*self._late, *([self._worker] if self._worker else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            if self._held is None:
                delivery = await self._queue.get()
            else:
                try:
                    async with asyncio.timeout(REORDER_HOLD_SECONDS):
                        delivery = await self._queue.get()
                except TimeoutError:
                    held, self._held = self._held, None
                    await self._post(*held)
                    continue
            await self._deliver(delivery)

    async def _deliver(self, delivery: _Delivery) -> None:
        faults, roll = self.faults, self.rng.random
        if roll() < faults.hook_drop:
            self.stats.hooks["dropped"] += 1
            return
        copies = 2 if roll() < faults.hook_duplicate else 1
        if copies == 2:
            self.stats.hooks["duplicated"] += 1
        if roll() < faults.hook_delay:
            self.stats.hooks["delayed"] += 1
            task = asyncio.create_task(self._post_later(delivery, copies))
            self._late.add(task)
            task.add_done_callback(self._late.discard)
            return
        if self._held is None and roll() < faults.hook_reorder:
            self.stats.hooks["reordered"] += 1
            self._held = delivery
            return
        for _ in range(copies):
            await self._post(*delivery)
        if self._held is not None:
            held, self._held = self._held, None
            await self._post(*held)

    async def _post_later(self, delivery: _Delivery, copies: int) -> None:
        await asyncio.sleep(self.faults.hook_delay_seconds)
        for _ in range(copies):
            await self._post(*delivery)

    async def _post(self, registration: Registration, payload: dict[str, Any]) -> None:
        key = registration.callback_apikey
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}",
                   "X-Api-Key": key}  # fmt: skip
        self._posting += 1
        try:
            response = await self.client.post(registration.callback_url, content=orjson.dumps(payload), headers=headers)
        except httpx.HTTPError:
            self.stats.hooks["failed"] += 1
            return
        finally:
            self._posting -= 1
        self.stats.hooks["sent" if response.status_code < 400 else "rejected"] += 1
