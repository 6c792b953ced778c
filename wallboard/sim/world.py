"""The simulated call center: agents, live call legs, flows, and the steps that move them.

Pure and synchronous: a discrete-event model driven by `advance(now)`, which runs every
scheduled step due by `now` in time order. Given the same seed and the same sequence of
`advance` and action calls, it makes the same calls, ids and webhooks. Webhooks come out
of `take_hooks()`; delivering them is hooks.py's job.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wallboard.sim import draws
from wallboard.sim.cdrs import CdrStore, make_cdr
from wallboard.sim.clock import LocalTime
from wallboard.sim.roster import Person, make_uuid

SPY_RING_SECONDS = 1.0
TRANSFER_RING_SECONDS = 1.0


@dataclass(slots=True)
class HookEvent:
    state: str  # ringing | answered | hangup | cdr
    payload: dict[str, Any]


@dataclass(slots=True, eq=False)
class Flow:
    """One call as the caller sees it; its legs are the extensions it rings."""

    flow_id: str
    cdr_id: str
    sip_call_id: str
    direction: str
    number: str
    hotline: str
    receive_dest: str
    started_at: float
    ring_seconds: float | None
    talk_seconds: float | None
    answer_by: str | None
    outcome: str | None  # the status if it ends unanswered
    manual: bool  # scripted without talk_seconds: waits for a hangup by hand
    legs: list[Leg] = field(default_factory=list)
    answered_at: float | None = None
    last_ext: str = ""
    epoch: int = 0  # bumped to cancel the steps scheduled before a transfer
    ended: bool = False


@dataclass(slots=True, eq=False)
class Leg:
    """One extension's side of a flow (or a supervisor's spy channel on another leg)."""

    call_id: str
    sip_call_id: str
    flow: Flow
    ext: str
    direction: str
    from_number: str
    to_number: str
    hotline: str
    started_at: float
    created_local: str
    answered_at: float | None = None
    spy_of: Leg | None = None
    spies: list[Leg] = field(default_factory=list)

    @property
    def state(self) -> str:
        return "ringing" if self.answered_at is None else "answered"

    @property
    def peer(self) -> str:
        return self.from_number if self.direction == "inbound" else self.to_number


@dataclass(slots=True, eq=False)
class Agent:
    person: Person
    logged_in: bool
    since: float
    leg: Leg | None = None

    @property
    def state(self) -> str:
        if not self.logged_in:
            return "offline"
        if self.leg is None:
            return "idle"
        return "ringing" if self.leg.answered_at is None else "oncall"


Step = Callable[..., None]


class ActionError(Exception):
    """A refused action, named with the vendor's error code."""

    def __init__(self, code: str, message: str, status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class World:
    def __init__(
        self,
        people: list[Person],
        *,
        rng: random.Random,
        local: LocalTime,
        domain: str,
        domain_id: str,
        now: float,
        cdrs: CdrStore,
        logged_in_ratio: float = 0.85,
    ) -> None:
        self.rng = rng
        self.local = local
        self.domain = domain
        self.domain_id = domain_id
        self.now = now
        self.cdrs = cdrs
        self.fmt = local.format  # one bound method, shared by every record
        self.version = 0
        self.agents: dict[str, Agent] = {}
        for person in people:
            online = person.group < 0 or rng.random() < logged_in_ratio
            self.agents[person.ext] = Agent(person, online, now)
        self.legs: dict[str, Leg] = {}
        self.flows: dict[str, Flow] = {}
        self.on_pickup: Callable[[str], None] | None = None
        self._heap: list[tuple[float, int, Step, tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._hooks: list[HookEvent] = []

    # -- the scheduler ---------------------------------------------------------------

    def schedule(self, delay: float, step: Step, *args: Any) -> None:
        heapq.heappush(self._heap, (self.now + max(0.0, delay), next(self._seq), step, args))

    def advance(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            due, _, step, args = heapq.heappop(self._heap)
            self.now = max(self.now, due)
            step(*args)
        self.now = max(self.now, now)

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def take_hooks(self) -> list[HookEvent]:
        hooks, self._hooks = self._hooks, []
        return hooks

    # -- starting calls ----------------------------------------------------------------

    def start_inbound(
        self,
        *,
        exts: list[str],
        number: str,
        hotline: str,
        receive_dest: str = "",
        ring_seconds: float | None,
        talk_seconds: float | None,
        answer_by: str | None,
        outcome: str | None = None,
        manual: bool = False,
    ) -> Flow:
        flow = self._new_flow("inbound", number, hotline, receive_dest, ring_seconds,
                              talk_seconds, answer_by, outcome, manual)  # fmt: skip
        for ext in exts:
            # One mobile to one extension keeps one call_id; a ring group gives each leg its own.
            call_id = flow.flow_id if len(exts) == 1 else make_uuid(self.rng)
            self._open_leg(flow, self.agents[ext], call_id, from_number=number, to_number=ext)
        if not flow.legs:
            self._end_flow(flow, outcome or "BUSY")
        elif ring_seconds is not None:
            self.schedule(ring_seconds, self._ring_over, flow, flow.epoch)
        return flow

    def start_outbound(
        self,
        *,
        ext: str,
        number: str,
        hotline: str,
        ring_seconds: float | None,
        talk_seconds: float | None,
        answered: bool,
        outcome: str | None = None,
        manual: bool = False,
        pickup_seconds: float | None = None,
        declined: bool = False,
    ) -> Flow:
        """`pickup_seconds` (click-to-call): the extension rings first, then the number."""
        flow = self._new_flow("outbound", number, hotline, "", ring_seconds, talk_seconds,
                              ext if answered else None, outcome, manual)  # fmt: skip
        self._open_leg(flow, self.agents[ext], flow.flow_id, from_number=ext, to_number=number)
        if pickup_seconds is not None:
            self.schedule(pickup_seconds, self._picked_up, flow, declined)
        elif ring_seconds is not None:
            self.schedule(ring_seconds, self._ring_over, flow, flow.epoch)
        return flow

    def _new_flow(
        self,
        direction: str,
        number: str,
        hotline: str,
        receive_dest: str,
        ring_seconds: float | None,
        talk_seconds: float | None,
        answer_by: str | None,
        outcome: str | None,
        manual: bool,
    ) -> Flow:
        flow_id = make_uuid(self.rng)
        flow = Flow(
            flow_id=flow_id,
            cdr_id=draws.cdr_id(self.rng, flow_id),
            sip_call_id=draws.sip_call_id(self.rng),
            direction=direction,
            number=number,
            hotline=hotline,
            receive_dest=receive_dest,
            started_at=self.now,
            ring_seconds=ring_seconds,
            talk_seconds=talk_seconds,
            answer_by=answer_by,
            outcome=outcome,
            manual=manual,
        )
        self.flows[flow_id] = flow
        return flow

    # -- moving calls ------------------------------------------------------------------

    def answer(self, call_id: str) -> bool:
        leg = self.legs.get(call_id)
        if leg is None:
            flow = self.flows.get(call_id)
            ringing = [x for x in flow.legs if x.answered_at is None] if flow else []
            if not ringing:
                return False
            leg = ringing[0]
        if leg.spy_of is not None:
            self._spy_joins(leg)
        else:
            self._answer_leg(leg)
        return True

    def hangup(self, call_id: str) -> bool:
        leg = self.legs.get(call_id)
        if leg is None:
            flow = self.flows.get(call_id)
            if flow is None:
                return False
            self._end_flow(flow, flow.outcome or "NO ANSWER")
            return True
        flow = leg.flow
        if leg.spy_of is not None:
            self._close_leg(leg)
        elif leg.answered_at is not None or len(flow.legs) == 1:
            self._end_flow(flow, flow.outcome or "NO ANSWER")
        else:
            self._close_leg(leg)  # one phone of a ring group declines; the others ring on
        return True

    def transfer(self, call_id: str, ext: str) -> Leg:
        leg = self.legs.get(call_id)
        if leg is None or leg.spy_of is not None:
            raise ActionError("CALL_NOT_FOUND", "Call not found", 404)
        target = self._free_agent(ext)
        flow = leg.flow
        flow.epoch += 1
        talk = flow.talk_seconds
        if talk is not None and flow.answered_at is not None:
            talk = max(5.0, talk - (self.now - flow.answered_at))
        elif talk is None and not flow.manual:
            talk = draws.talk_seconds(self.rng)
        for old in list(flow.legs):
            self._close_leg(old)
        new = self._open_leg(
            flow,
            target,
            make_uuid(self.rng),
            from_number=flow.number if flow.direction == "inbound" else ext,
            to_number=ext if flow.direction == "inbound" else flow.number,
        )
        flow.answer_by, flow.talk_seconds, flow.ring_seconds = ext, talk, TRANSFER_RING_SECONDS
        self.schedule(TRANSFER_RING_SECONDS, self._ring_over, flow, flow.epoch)
        return new

    def spy(self, call_id: str, ext: str) -> Leg:
        """Listen, whisper and barge look the same from outside: the ext rings, then joins."""
        leg = self.legs.get(call_id)
        if leg is None or leg.spy_of is not None:
            raise ActionError("CALL_NOT_FOUND", "Call not found", 404)
        agent = self._free_agent(ext)
        spy = Leg(
            call_id=make_uuid(self.rng),
            sip_call_id=draws.sip_call_id(self.rng),
            flow=leg.flow,
            ext=ext,
            direction="outbound",
            from_number=ext,
            to_number=leg.ext,
            hotline="",
            started_at=self.now,
            created_local=self.local.format(self.now),
            spy_of=leg,
        )
        leg.spies.append(spy)
        self._attach(agent, spy)
        self.schedule(SPY_RING_SECONDS, self._spy_joins, spy)
        return spy

    def add_agent(self, person: Person, *, logged_in: bool) -> Agent:
        """An extension created at run time (the tenant API's POST .../extension)."""
        agent = Agent(person, logged_in, self.now)
        self.agents[person.ext] = agent
        self.version += 1
        return agent

    def login(self, ext: str) -> None:
        agent = self.agents[ext]
        if not agent.logged_in:
            agent.logged_in, agent.since = True, self.now
            self.version += 1

    def logout(self, ext: str) -> None:
        agent = self.agents[ext]
        if agent.leg is not None:
            self.hangup(agent.leg.call_id)
        if agent.logged_in:
            agent.logged_in, agent.since = False, self.now
            self.version += 1

    def check_free(self, ext: str) -> Agent:
        return self._free_agent(ext)

    def _free_agent(self, ext: str) -> Agent:
        agent = self.agents.get(ext)
        if agent is None or not agent.logged_in:
            raise ActionError("USER_NOT_REGISTERED", "User not registered extension with Softphone or IP Phone")
        if agent.leg is not None:
            raise ActionError("USER_BUSY", "User is busy")
        return agent

    # -- scheduled steps ---------------------------------------------------------------

    def _ring_over(self, flow: Flow, epoch: int) -> None:
        if flow.ended or epoch != flow.epoch:
            return
        for leg in flow.legs:
            if flow.answer_by is not None and leg.ext == flow.answer_by:
                self._answer_leg(leg)
                return
        self._end_flow(flow, flow.outcome or "NO ANSWER")

    def _talk_over(self, flow: Flow, epoch: int) -> None:
        if not flow.ended and epoch == flow.epoch:
            self._end_flow(flow, "ANSWERED")

    def _picked_up(self, flow: Flow, declined: bool) -> None:
        if self.on_pickup is not None:
            self.on_pickup(flow.flow_id)
        if flow.ended:
            return
        if declined:
            self._end_flow(flow, "NO ANSWER")
        elif flow.ring_seconds is not None:
            self.schedule(flow.ring_seconds, self._ring_over, flow, flow.epoch)

    def _spy_joins(self, spy: Leg) -> None:
        if spy.call_id in self.legs and spy.answered_at is None:
            spy.answered_at = self.now
            self.agents[spy.ext].since = self.now
            self.version += 1
            self._emit("answered", spy)

    # -- leg and flow bookkeeping ------------------------------------------------------

    def _open_leg(self, flow: Flow, agent: Agent, call_id: str, *, from_number: str, to_number: str) -> Leg:
        leg = Leg(
            call_id=call_id,
            sip_call_id=draws.sip_call_id(self.rng),
            flow=flow,
            ext=agent.person.ext,
            direction=flow.direction,
            from_number=from_number,
            to_number=to_number,
            hotline=flow.hotline,
            started_at=self.now,
            created_local=self.local.format(self.now),
        )
        flow.legs.append(leg)
        self._attach(agent, leg)
        return leg

    def _attach(self, agent: Agent, leg: Leg) -> None:
        self.legs[leg.call_id] = leg
        agent.leg, agent.since = leg, self.now
        self.version += 1
        self._emit("ringing", leg)

    def _answer_leg(self, leg: Leg) -> None:
        flow = leg.flow
        if leg.answered_at is not None or flow.ended:
            return
        leg.answered_at = self.now
        if flow.answered_at is None:
            flow.answered_at = self.now
        self.agents[leg.ext].since = self.now
        self.version += 1
        self._emit("answered", leg)
        for other in list(flow.legs):
            if other is not leg:
                self._close_leg(other)
        if flow.talk_seconds is not None:
            self.schedule(flow.talk_seconds, self._talk_over, flow, flow.epoch)

    def _close_leg(self, leg: Leg) -> None:
        for spy in list(leg.spies):
            self._close_leg(spy)
        self.legs.pop(leg.call_id, None)
        if leg.spy_of is not None:
            leg.spy_of.spies.remove(leg)
        else:
            leg.flow.legs.remove(leg)
            leg.flow.last_ext = leg.ext
        agent = self.agents[leg.ext]
        if agent.leg is leg:
            agent.leg, agent.since = None, self.now
        self.version += 1
        billsec = 0 if leg.answered_at is None else round(self.now - leg.answered_at)
        self._emit("hangup", leg, duration=round(self.now - leg.started_at), billsec=billsec)

    def _end_flow(self, flow: Flow, status: str) -> None:
        if flow.ended:
            return
        flow.ended = True
        answered_ext = next((x.ext for x in flow.legs if x.answered_at is not None), None)
        for leg in list(flow.legs):
            self._close_leg(leg)
        self.flows.pop(flow.flow_id, None)
        if flow.answered_at is not None:
            status = "ANSWERED"
        elif status == "ANSWERED":
            status = "NO ANSWER"
        ext = answered_ext or flow.last_ext
        inbound = flow.direction == "inbound"
        recording = draws.recording_url(flow.flow_id) if flow.answered_at is not None else ""
        cdr = make_cdr(
            flow_id=flow.cdr_id,
            sip_call_id=flow.sip_call_id,
            direction=flow.direction,
            extension=ext,
            from_number=flow.number if inbound else flow.hotline,
            to_number=flow.hotline if inbound else flow.number,
            receive_dest=flow.receive_dest,
            started=flow.started_at,
            answered=flow.answered_at,
            ended=self.now,
            status=status,
            cause=draws.cause_for(self.rng, status),
            fmt=self.fmt,
        )
        self.cdrs.add(cdr)
        self.version += 1
        billsec = 0 if flow.answered_at is None else round(self.now - flow.answered_at)
        self._hooks.append(
            HookEvent(
                "cdr",
                {
                    "call_id": flow.flow_id,
                    "sip_call_id": flow.sip_call_id,
                    "domain": self.domain,
                    "direction": flow.direction,
                    "from_number": flow.number if inbound else ext,
                    "to_number": ext if inbound else flow.number,
                    "hotline": flow.hotline,
                    "state": "cdr",
                    "duration": cdr.duration,
                    "billsec": billsec,
                    "recording_url": recording,
                    "status": status,
                    "extension": ext,
                    "time_started": cdr.time_started,
                    "time_answered": cdr.time_answered,
                    "time_ended": cdr.time_ended,
                    "time": self.local.format(self.now),
                },
            )
        )

    def _emit(self, state: str, leg: Leg, **extra: Any) -> None:
        payload: dict[str, Any] = {
            "call_id": leg.call_id,
            "sip_call_id": leg.sip_call_id,
            "domain": self.domain,
            "direction": leg.direction,
            "from_number": leg.from_number,
            "to_number": leg.to_number,
            "hotline": leg.hotline,
            "state": state,
            "time": self.local.format(self.now),
        }
        payload.update(extra)
        self._hooks.append(HookEvent(state, payload))
