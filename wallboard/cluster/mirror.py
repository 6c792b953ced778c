"""A node's copy of the line: the state its screens hold, kept from the bus.

Every node, the leader too, serves its screens' snapshots from this copy, never from the
leader's engine: a snapshot then shows exactly what was published up to its seq, never a
change that a leader fenced off later could not publish. It is kept as a screen keeps its
own (apply.py: store.js's semantics), from the supervisors' payloads, which carry
everything a screen is shown; the other audiences' snapshots are cut from it.
"""

from __future__ import annotations

from typing import Any

import orjson

from wallboard.apply import LostTrack, Replica
from wallboard.audience import Audience, screen_state
from wallboard.bus import Published
from wallboard.patches import WIRE_FIELDS, snapshot_message


class Mirror:
    def __init__(self) -> None:
        self._copy: Replica | None = None
        self.epoch = ""
        self.seq = 0
        self.heard: dict[str, Any] = {}  # each source's last success, as the leader last said
        self._snapshots: dict[tuple[int, Audience, int], bytes] = {}

    @property
    def loaded(self) -> bool:
        return self._copy is not None

    def load(self, saved: dict[str, Any], patches: list[Published]) -> None:
        """The line from a snapshot's state (LiveState.export) and the patches after it."""
        message = {"seq": saved["seq"], "fields": WIRE_FIELDS, "state": saved}
        copy = Replica.from_snapshot(message)
        epoch = saved["epoch"]
        for item in patches:
            if item.epoch != epoch or item.seq != copy.seq + 1:
                raise LostTrack(f"patch {item.epoch}/{item.seq} after {epoch}/{copy.seq}")
            copy.patch(orjson.loads(item.payloads[Audience.SUPERVISOR]))
        self._copy, self.epoch, self.seq = copy, epoch, int(copy.seq)
        self._snapshots.clear()
        copy.heard(self.heard)

    def apply(self, item: Published) -> bool:
        """The next patch of the line: True once applied; False when it is not the next
        (another epoch, a gap): the copy must be loaded again."""
        copy = self._copy
        if copy is None or item.epoch != self.epoch or item.seq != self.seq + 1:
            return False
        try:
            copy.patch(orjson.loads(item.payloads[Audience.SUPERVISOR]))
        except LostTrack:
            return False
        self.seq = item.seq
        return True

    def hear(self, at: dict[str, Any]) -> None:
        self.heard = at
        if self._copy is not None:
            self._copy.heard(at)

    def state(self, now: int) -> dict[str, Any]:
        """As LiveState.snapshot has it."""
        if self._copy is None:  # nothing read yet (Redis down since start): an empty board
            return {"epoch": "", "seq": 0, "now": now, "domain": "", "agents": [], "calls": [],
                    "status": {"counts": {}, "total": 0, "since": None}, "stats": None, "sources": {},
                    "monitors": []}
        held = self._copy.state()  # every top-level value a screen holds (apply.TOP_KEYS)
        return {"epoch": self.epoch, "seq": self.seq, "now": now, **held,
                "agents": list(held["agents"].values()), "calls": list(held["calls"].values())}

    def snapshot(self, audience: Audience, now: int) -> dict[str, Any]:
        return screen_state(self.state(now), audience)

    def snapshot_bytes(self, audience: Audience, now: int) -> tuple[int, bytes]:
        """Encoded once per seq, audience and second, however many screens ask."""
        key = (self.seq, audience, now // 1000)
        body = self._snapshots.get(key)
        if body is None:
            self._snapshots.clear()
            body = self._snapshots[key] = orjson.dumps(snapshot_message(self.seq, self.snapshot(audience, now)))
        return self.seq, body

    def call(self, call_id: str) -> dict[str, Any] | None:
        if self._copy is None:
            return None
        found = self._copy.values["calls"].get(call_id)
        return dict(found) if isinstance(found, dict) else None
