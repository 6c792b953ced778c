"""Today's figures that the PBX does not report directly, computed from CDRs:
service level, answer rate, average talk time, calls per hour, and per agent the
calls answered and the time talked; and from the live calls: how many callers
wait and since when.

CDRs arrive twice (the `cdr` webhook and the incremental `/v1/cdr` read); each is
counted once, by id. After a restart the poller reads the day again from local
midnight, so the figures are right across restarts without being stored.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from wallboard.pbx.times import PbxTime


class CdrLike(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def extension(self) -> str: ...
    @property
    def direction(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def time_started(self) -> str: ...
    @property
    def time_answered(self) -> str: ...
    @property
    def time_ended(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Flow:
    inbound: bool
    started: int
    answered: int | None
    ended: int | None
    agent: str = ""  # the extension that answered (or, unanswered, last rang)


def _merged(old: Flow, new: Flow) -> Flow:
    """One flow from two copies: what either knows (who took it, when it was answered, when
    it ended), the first copy winning where both do. Known facts are never lost."""
    return Flow(inbound=old.inbound, started=old.started,
                answered=old.answered if old.answered is not None else new.answered,
                ended=old.ended if old.ended is not None else new.ended,
                agent=old.agent or new.agent)


class DayStats:
    """The day's flows, counted as they come: a live event costs the waiting figures
    only (O(live calls)), never a pass over the day's CDRs."""

    def __init__(self, clock: PbxTime, *, sla_seconds: int, now_ms: int) -> None:
        self.time = clock
        self.sla_ms = sla_seconds * 1000
        self.sla_seconds = sla_seconds
        self.flows: dict[str, Flow] = {}
        self.day_start = clock.day_start_ms(now_ms)
        self.last_ended = ""  # the newest time_ended read, PBX local text: where the next read starts
        self._changed_agents: set[str] = set()
        self._reset()

    def _reset(self) -> None:
        self._per_hour = [0] * 24
        self._answered_per_hour = [0] * 24
        self._inbound = self._in_sla = self._answered = 0
        self._talk_total = self._talk_count = 0
        self._flow_json: dict[str, Any] | None = None  # built from the counts when asked, then kept
        self._per_agent: dict[str, tuple[int, int]] = {}  # ext -> (calls answered, talk ms)

    def new_day(self, now_ms: int) -> None:
        self._changed_agents |= self._per_agent.keys()
        self.flows.clear()
        self.day_start = self.time.day_start_ms(now_ms)
        self._reset()

    def agent_today(self, ext: str) -> dict[str, int]:
        """`answered_today` (calls) and `talk_today` (seconds) for an agent's record."""
        answered, talk_ms = self._per_agent.get(ext, (0, 0))
        return {"answered_today": answered, "talk_today": round(talk_ms / 1000)}

    def take_changed_agents(self) -> set[str]:
        """The agents whose `agent_today` moved since the last call."""
        changed, self._changed_agents = self._changed_agents, set()
        return changed

    def _add(self, key: str, flow: Flow) -> bool:
        """Count a flow once by its id; a later copy fills in what the first lacked. (A `cdr`
        webhook may lack the extension or the status that the `/v1/cdr` copy has.)"""
        if not key or flow.started < self.day_start:
            return False
        old = self.flows.get(key)
        if old is not None:
            flow = _merged(old, flow)
            if flow == old:
                return False
            self._count(old, -1)
        self.flows[key] = flow
        self._count(flow, +1)
        self._flow_json = None
        return True

    def add_flows(self, flows: Mapping[str, Flow]) -> None:
        """Flows counted elsewhere (a leader's state carried on by the next, state.py)."""
        for key, flow in flows.items():
            self._add(key, flow)

    def _count(self, flow: Flow, sign: int) -> None:
        hour = min(23, max(0, (flow.started - self.day_start) // 3_600_000))
        self._per_hour[hour] += sign
        if flow.answered is not None:
            self._answered += sign
            self._answered_per_hour[hour] += sign
            talk = flow.ended - flow.answered if flow.ended is not None and flow.ended >= flow.answered else None
            if talk is not None:
                self._talk_total += sign * talk
                self._talk_count += sign
            if flow.agent:
                calls, talk_ms = self._per_agent.get(flow.agent, (0, 0))
                self._per_agent[flow.agent] = (calls + sign, talk_ms + sign * (talk or 0))
                self._changed_agents.add(flow.agent)
        if flow.inbound:
            self._inbound += sign
            if flow.answered is not None and flow.answered - flow.started <= self.sla_ms:
                self._in_sla += sign

    def add_cdrs(self, records: Iterable[CdrLike]) -> bool:
        changed = False
        for r in records:
            started = self.time.parse(r.time_started)
            if started is None:
                continue
            if r.time_ended > self.last_ended:
                self.last_ended = r.time_ended
            changed |= self._add(r.id.strip(), Flow(
                inbound=r.direction == "inbound", started=started,
                answered=self.time.parse(r.time_answered) if r.status == "ANSWERED" else None,
                ended=self.time.parse(r.time_ended), agent=r.extension.strip()))
        return changed

    def add_cdr_event(self, ev: Any) -> bool:
        if ev.time_started is None:
            return False
        return self._add(ev.call_id.strip(), Flow(
            inbound=ev.direction == "inbound", started=ev.time_started,
            answered=ev.time_answered if ev.status == "ANSWERED" else None, ended=ev.time_ended,
            agent=ev.extension.strip()))

    def _flow_figures(self) -> dict[str, Any]:
        if self._flow_json is None:
            inbound, total = self._inbound, len(self.flows)
            self._flow_json = {
                "sla_seconds": self.sla_seconds,
                "service_level": round(100 * self._in_sla / inbound, 1) if inbound else None,
                "inbound_total": inbound,
                "inbound_in_sla": self._in_sla,
                "answer_rate": round(100 * self._answered / total, 1) if total else None,
                "avg_talk_seconds": (round(self._talk_total / self._talk_count / 1000, 1)
                                     if self._talk_count else None),
                # copies: the counts move on, the JSON already sent must not
                "calls_per_hour": list(self._per_hour),
                "answered_per_hour": list(self._answered_per_hour),
            }
        return self._flow_json

    def to_json(self, waiting: tuple[int, int | None]) -> dict[str, Any]:
        """The day's figures, with `waiting` (callers, earliest start) from `WaitingCallers`."""
        return {**self._flow_figures(), "waiting": waiting[0], "longest_wait_since": waiting[1]}


class WaitingCallers:
    """Inbound callers ringing and not yet answered by anyone, ring-group legs grouped
    by the caller's number, kept as calls are put and removed: a webhook costs a few
    dictionary operations, not a pass over every live call (a queue can hold hundreds).

    By number, not by flow (hotline and number): a leg first seen by a poll has no
    hotline yet, and grouped apart it would count its caller once more until its
    webhook came. One number waiting on two hotlines at once counts once."""

    def __init__(self) -> None:
        self._flow_of: dict[str, str] = {}  # call_id -> flow key
        self._legs: dict[str, dict[str, tuple[bool, int]]] = {}  # flow -> {call_id: (answered, started)}
        self._since: dict[str, int] = {}  # waiting flow -> its earliest leg's start
        self._heap: list[tuple[int, str]] = []  # (since, flow); entries _since no longer agrees with are stale

    def put(self, call: Mapping[str, Any]) -> None:
        call_id = call["call_id"]
        self.remove(call_id)
        if call["direction"] != "inbound":
            return
        key = call.get("from") or call_id
        self._flow_of[call_id] = key
        self._legs.setdefault(key, {})[call_id] = (call["state"] == "answered", call["started_at"])
        self._settle(key)

    def remove(self, call_id: str) -> None:
        key = self._flow_of.pop(call_id, None)
        if key is None:
            return
        legs = self._legs[key]
        del legs[call_id]
        if not legs:
            del self._legs[key]
        self._settle(key)

    def _settle(self, key: str) -> None:
        legs = self._legs.get(key)
        if not legs or any(answered for answered, _ in legs.values()):
            self._since.pop(key, None)
            return
        since = min(started for _, started in legs.values())
        if self._since.get(key) != since:
            self._since[key] = since
            heapq.heappush(self._heap, (since, key))
            if len(self._heap) > 2 * len(self._since) + 64:  # mostly stale: start over
                self._heap = [(s, k) for k, s in self._since.items()]
                heapq.heapify(self._heap)

    def figures(self) -> tuple[int, int | None]:
        """(callers waiting, when the longest wait began)."""
        heap = self._heap
        while heap and self._since.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return len(self._since), (heap[0][0] if heap else None)


def waiting_of(calls: Mapping[str, Mapping[str, Any]]) -> tuple[int, int | None]:
    """`WaitingCallers.figures` in one pass over the calls (the definition; tests use it)."""
    flows: dict[str, tuple[bool, int]] = {}
    for c in calls.values():
        if c["direction"] != "inbound":
            continue
        key = c.get("from") or c["call_id"]
        was_answered, since = flows.get(key, (False, c["started_at"]))
        flows[key] = (was_answered or c["state"] == "answered", min(since, c["started_at"]))
    waits = [since for answered, since in flows.values() if not answered]
    return len(waits), (min(waits) if waits else None)
