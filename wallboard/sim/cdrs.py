"""Call detail records: the store, its filters, scroll cursors and per-status counts."""

from __future__ import annotations

import bisect
import itertools
import math
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

STATUSES = ("ANSWERED", "BUSY", "NO ANSWER", "FAILED", "UNKNOWN")
DIRECTION_CODES = {"inbound": 1, "local": 2, "outbound": 3}
MAX_RECORDS = 200_000
MAX_SCROLLS = 200


@dataclass(slots=True)
class Cdr:
    id: str  # may carry a trailing space, as the real PBX's sometimes do
    sip_call_id: str
    cause: str
    direction: int
    recording_url: str
    extension: str
    from_number: str
    to_number: str
    receive_dest: str
    started: float
    answered: float | None
    ended: float
    status: str
    time_started: str
    time_answered: str
    time_ended: str

    @property
    def duration(self) -> int:
        return round(self.ended - self.started)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sip_call_id": self.sip_call_id,
            "cause": self.cause,
            "duration": self.duration,
            "direction": self.direction,
            "recording_url": self.recording_url,
            "extension": self.extension,
            "from_number": self.from_number,
            "to_number": self.to_number,
            "receive_dest": self.receive_dest,
            "time_started": self.time_started,
            "time_answered": self.time_answered,
            "time_ended": self.time_ended,
            "status": self.status,
        }


CdrFilter = Callable[[Cdr], bool]


class CdrStore:
    """Records kept sorted by start time, so date-range reports are a bisect and a slice."""

    def __init__(self) -> None:
        self._records: list[Cdr] = []
        self._starts: list[float] = []
        self._by_id: dict[str, Cdr] = {}
        self._scrolls: dict[str, tuple[list[Cdr], int]] = {}

    def __len__(self) -> int:
        return len(self._records)

    def add(self, cdr: Cdr) -> None:
        index = bisect.bisect_right(self._starts, cdr.started)
        self._starts.insert(index, cdr.started)
        self._records.insert(index, cdr)
        self._by_id[cdr.id.strip()] = cdr
        self._by_id[cdr.sip_call_id] = cdr
        if len(self._records) > MAX_RECORDS:
            oldest = self._records.pop(0)
            self._starts.pop(0)
            self._by_id.pop(oldest.id.strip(), None)
            self._by_id.pop(oldest.sip_call_id, None)

    def get(self, key: str) -> Cdr | None:
        return self._by_id.get(key.strip())

    def between(self, start: float, end: float) -> list[Cdr]:
        """Records started in [start, end], to the whole second as their strings show."""
        low = bisect.bisect_left(self._starts, start)
        high = bisect.bisect_left(self._starts, math.floor(end) + 1)
        return self._records[low:high]

    def counts(self, start: float, end: float) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for cdr in self.between(start, end):
            counts[cdr.status] += 1
        return counts

    def search(self, filters: list[CdrFilter]) -> list[Cdr]:
        """Newest first, as the vendor's list answers."""
        return [c for c in reversed(self._records) if all(f(c) for f in filters)]

    def open_scroll(self, matches: list[Cdr], batch: int) -> tuple[list[Cdr], str]:
        scroll_id = secrets.token_urlsafe(18)
        first = matches[:batch]
        self._scrolls[scroll_id] = (matches, len(first))
        while len(self._scrolls) > MAX_SCROLLS:
            del self._scrolls[next(iter(self._scrolls))]
        return first, scroll_id

    def next_scroll(self, scroll_id: str, batch: int | None) -> list[Cdr] | None:
        """The next batch, [] once exhausted, None for an unknown scroll_id."""
        cursor = self._scrolls.get(scroll_id)
        if cursor is None:
            return None
        matches, position = cursor
        size = batch or 100
        page = list(itertools.islice(matches, position, position + size))
        self._scrolls[scroll_id] = (matches, position + len(page))
        return page


def make_cdr(
    *,
    flow_id: str,
    sip_call_id: str,
    direction: str,
    extension: str,
    from_number: str,
    to_number: str,
    receive_dest: str,
    started: float,
    answered: float | None,
    ended: float,
    status: str,
    cause: str,
    recording_url: str,
    fmt: Callable[[float], str],
) -> Cdr:
    return Cdr(
        id=flow_id,
        sip_call_id=sip_call_id,
        cause=cause,
        direction=DIRECTION_CODES[direction],
        recording_url=recording_url,
        extension=extension,
        from_number=from_number,
        to_number=to_number,
        receive_dest=receive_dest,
        started=started,
        answered=answered,
        ended=ended,
        status=status,
        time_started=fmt(started),
        time_answered="" if answered is None else fmt(answered),
        time_ended=fmt(ended),
    )
