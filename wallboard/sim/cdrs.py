"""Call detail records: the store, its filters, scroll cursors and per-status counts."""

from __future__ import annotations

import bisect
import itertools
import math
import secrets
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from wallboard.sim import draws

STATUSES = ("ANSWERED", "BUSY", "NO ANSWER", "FAILED", "UNKNOWN")
DIRECTION_CODES = {"inbound": 1, "local": 2, "outbound": 3}
MAX_RECORDS = 200_000
MAX_SCROLLS = 200


@dataclass(slots=True)
class Cdr:
    """Strings derived from other fields (times, recording URL) are made when asked:
    hundreds of simulated tenants keep a day of records each."""

    id: str  # may carry a trailing space, as the real PBX's sometimes do
    sip_call_id: str
    cause: str
    direction: int
    extension: str
    from_number: str
    to_number: str
    receive_dest: str
    started: float
    answered: float | None
    ended: float
    status: str
    fmt: Callable[[float], str]  # epoch seconds -> PBX local time; shared by every record

    @property
    def duration(self) -> int:
        return round(self.ended - self.started)

    @property
    def recording_url(self) -> str:
        return "" if self.answered is None else draws.recording_url(self.id.strip())

    @property
    def time_started(self) -> str:
        return self.fmt(self.started)

    @property
    def time_answered(self) -> str:
        return "" if self.answered is None else self.fmt(self.answered)

    @property
    def time_ended(self) -> str:
        return self.fmt(self.ended)

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
    """Records kept sorted by start time, so date-range reports are a bisect and a slice.

    `backlog` (today's records from before start-up) is made on first use, so that a
    simulator of many tenants starts at once and a tenant nobody asks about costs little.
    """

    def __init__(self, backlog: Callable[[], Iterable[Cdr]] | None = None) -> None:
        self._backlog = backlog
        self._records: list[Cdr] = []
        self._starts = array("d")
        self._by_id: dict[str, Cdr] | None = None  # built on the first lookup by id
        self._scrolls: dict[str, tuple[list[Cdr], int]] = {}

    @property
    def loaded(self) -> bool:
        """Whether the backlog has been made (or there is none)."""
        return self._backlog is None

    def load(self) -> None:
        if self._backlog is not None:
            backlog, self._backlog = self._backlog, None
            for cdr in backlog():
                self.add(cdr)

    def __len__(self) -> int:
        self.load()
        return len(self._records)

    def add(self, cdr: Cdr) -> None:
        # No load() here: a live call ending is no reason to make the backlog, whose
        # records all start before start-up and land before the live ones when made.
        index = bisect.bisect_right(self._starts, cdr.started)
        self._starts.insert(index, cdr.started)
        self._records.insert(index, cdr)
        if self._by_id is not None:
            self._index(cdr)
        if len(self._records) > MAX_RECORDS:
            oldest = self._records.pop(0)
            self._starts.pop(0)
            if self._by_id is not None:
                self._by_id.pop(oldest.id.strip(), None)
                self._by_id.pop(oldest.sip_call_id, None)

    def _index(self, cdr: Cdr) -> None:
        assert self._by_id is not None
        self._by_id[cdr.id.strip()] = cdr
        self._by_id[cdr.sip_call_id] = cdr

    def get(self, key: str) -> Cdr | None:
        self.load()
        if self._by_id is None:
            self._by_id = {}
            for cdr in self._records:
                self._index(cdr)
        return self._by_id.get(key.strip())

    def between(self, start: float, end: float) -> list[Cdr]:
        """Records started in [start, end], to the whole second as their strings show."""
        self.load()
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
        self.load()
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
    fmt: Callable[[float], str],
) -> Cdr:
    """`flow_id` is the record's id (it may end in a space); an answered call has a recording."""
    return Cdr(
        id=flow_id,
        sip_call_id=sip_call_id,
        cause=cause,
        direction=DIRECTION_CODES[direction],
        extension=extension,
        from_number=from_number,
        to_number=to_number,
        receive_dest=receive_dest,
        started=started,
        answered=answered,
        ended=ended,
        status=status,
        fmt=fmt,
    )
