"""The patch bus: between the engine's commit and the screens.

The engine publishes each committed patch once, as plain bytes per audience (the JSON of
the patch message, not framed: framing belongs to the socket side, `hub.py`). Screens'
hubs subscribe from a seq and get every later patch in order. The shape is
encode/broadcaster's: `subscribe()` is an async context manager that hands out an
iterator and cleans up in `finally`.

`LocalBus` is the one-process implementation, the default. It keeps the last
`history` patches, so that a screen coming back with `?epoch=E&seq=N` resumes with
the patches after N instead of a whole snapshot while they are still held. A Redis
Streams implementation of the same interface serves several processes.

A bus is per scope (one tenant): every name it uses carries the scope.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from wallboard.audience import Audience

if TYPE_CHECKING:
    from wallboard.views import View


@dataclass(frozen=True, slots=True)
class Published:
    """One committed patch: its epoch and seq and its encoded message per audience."""

    epoch: str
    seq: int
    payloads: Mapping[Audience, bytes]
    # The ops a team's or a hotline's screens of an audience get (views.py), worked out
    # when asked; None from it: send those screens a snapshot. None here: not narrowed
    # (a patch from another process: its screens of a view are sent a snapshot).
    narrow: Callable[[Audience, View], list[Any] | None] | None = field(default=None, compare=False)


class Subscription(Protocol):
    def __aiter__(self) -> AsyncIterator[Published]: ...


class PatchBus(Protocol):
    epoch: str

    async def publish(self, item: Published) -> None:
        """Hand a patch to every subscriber; in order, never waits for a screen."""

    def subscribe(self, from_seq: int | None = None) -> contextlib.AbstractAsyncContextManager[
            AsyncIterator[Published]]:
        """Every patch after `from_seq` still held, then every new one (None: new ones only)."""

    def since(self, epoch: str, seq: int) -> list[Published] | None:
        """The held patches after `seq` of `epoch`, in order; None when they are not all held
        (another epoch, or older than the history): the caller sends a snapshot instead."""


class LocalBus:
    """The in-process bus: subscribers' queues and a bounded history."""

    def __init__(self, epoch: str, *, history: int = 1024) -> None:
        self.epoch = epoch
        self.seq = 0  # the last seq published
        self._history: deque[Published] = deque(maxlen=history)
        self._queues: set[asyncio.Queue[Published]] = set()
        self._listeners: list[Callable[[Published], None]] = []

    async def publish(self, item: Published) -> None:
        self.publish_nowait(item)

    def publish_nowait(self, item: Published) -> None:
        self.seq = item.seq
        self._history.append(item)
        for deliver in self._listeners:
            deliver(item)
        for queue in self._queues:
            queue.put_nowait(item)

    @contextlib.contextmanager
    def attach(self, deliver: Callable[[Published], None]) -> Iterator[None]:
        """`deliver` is called with each patch as it is published, in the committing turn of
        the loop: in one process the screens' frames go out without a task switch."""
        self._listeners.append(deliver)
        try:
            yield
        finally:
            self._listeners.remove(deliver)

    def subscribe(self, from_seq: int | None = None) -> contextlib.AbstractAsyncContextManager[
            AsyncIterator[Published]]:
        return held_then_new(self._history, self._queues, from_seq)

    def since(self, epoch: str, seq: int) -> list[Published] | None:
        if epoch != self.epoch or seq > self.seq:
            return None
        held = self._history
        first = held[0].seq if held else self.seq + 1
        if seq < first - 1:
            return None  # some of what it missed is no longer held
        return [item for item in held if item.seq > seq]


@contextlib.asynccontextmanager
async def held_then_new(history: Iterable[Published], queues: set[asyncio.Queue[Published]],
                        from_seq: int | None) -> AsyncIterator[AsyncIterator[Published]]:
    """A subscriber's iterator: the held patches after `from_seq` (None: none of them), then
    every patch a publisher puts in `queues`; its queue leaves `queues` when it is done."""
    queue: asyncio.Queue[Published] = asyncio.Queue()
    if from_seq is not None:
        for item in history:
            if item.seq > from_seq:
                queue.put_nowait(item)
    queues.add(queue)

    async def items() -> AsyncIterator[Published]:
        while True:
            yield await queue.get()

    try:
        yield items()
    finally:
        queues.discard(queue)
