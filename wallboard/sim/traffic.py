"""Calls over time: random arrivals, softphones logging in and out, and today's backlog."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence

from wallboard.sim import draws
from wallboard.sim.cdrs import Cdr, make_cdr
from wallboard.sim.roster import Person, make_person, make_uuid
from wallboard.sim.world import Agent, World

MAX_PREFILL = 20_000  # today's backlog is capped so that start-up stays fast and small
INBOUND_SHARE = 0.65
CLICK2CALL_DECLINE = 0.08


class Traffic:
    """Drives `world` with random calls at `rate` per minute; 0 stops calls and login churn.

    Churn goes with traffic so that a test which scripts its calls (rate 0) owns every agent.
    """

    def __init__(self, world: World) -> None:
        self.world = world
        self.rng = world.rng
        self.rate = 0.0
        self._epoch = 0
        self._workers = [a for a in world.agents.values() if a.person.group >= 0]
        groups: dict[int, list[Agent]] = {}
        for agent in self._workers:
            groups.setdefault(agent.person.group, []).append(agent)
        self._groups = list(groups.values())

    def set_rate(self, rate: float) -> None:
        self.rate = max(0.0, rate)
        self._epoch += 1
        if self.rate <= 0:
            return
        self.world.schedule(self.rng.expovariate(self.rate / 60.0), self._arrive, self._epoch)
        for agent in self._workers:
            mean = 1800.0 if agent.logged_in else 240.0
            self.world.schedule(self.rng.expovariate(1 / mean), self._toggle, agent, self._epoch)

    def add_extension(self, ext: str) -> Agent:
        """A new extension (the tenant API's): logged out, then in the churn like the others."""
        person = make_person(ext, len(self._workers), self.rng)
        agent = self.world.add_agent(person, logged_in=False)
        self._workers.append(agent)
        while len(self._groups) <= person.group:
            self._groups.append([])
        self._groups[person.group].append(agent)
        if self.rate > 0:
            self.world.schedule(self.rng.expovariate(1 / 240.0), self._toggle, agent, self._epoch)
        return agent

    def _arrive(self, epoch: int) -> None:
        if epoch != self._epoch:
            return
        if self.rng.random() < INBOUND_SHARE:
            self._inbound()
        else:
            self._outbound()
        self.world.schedule(self.rng.expovariate(self.rate / 60.0), self._arrive, epoch)

    def _toggle(self, agent: Agent, epoch: int) -> None:
        if epoch != self._epoch:
            return
        ext = agent.person.ext
        if not agent.logged_in:
            self.world.login(ext)
            self.world.schedule(self.rng.expovariate(1 / 1800.0), self._toggle, agent, epoch)
        elif agent.leg is not None:
            self.world.schedule(30.0, self._toggle, agent, epoch)  # nobody logs out mid-call
        else:
            self.world.logout(ext)
            away = min(1800.0, max(30.0, self.rng.lognormvariate(math.log(180.0), 0.7)))
            self.world.schedule(away, self._toggle, agent, epoch)

    def _idle(self, pool: Sequence[Agent], wanted: int, taken: list[Agent]) -> list[Agent]:
        """Up to `wanted` idle agents of `pool`, scanning from a random point."""
        found: list[Agent] = []
        if not pool:
            return found
        start = self.rng.randrange(len(pool))
        for index in range(len(pool)):
            agent = pool[(start + index) % len(pool)]
            if agent.logged_in and agent.leg is None and agent not in taken:
                found.append(agent)
                if len(found) == wanted:
                    break
        return found

    def _inbound(self) -> None:
        group = self.rng.randrange(len(self._groups))
        wanted = self.rng.randint(2, 4)
        ring = self._idle(self._groups[group], wanted, [])
        if len(ring) < wanted:
            ring += self._idle(self._workers, wanted - len(ring), ring)
        outcome = draws.pick_outcome(self.rng, inbound=True)
        answered = outcome == "ANSWERED"
        self.world.start_inbound(
            exts=[a.person.ext for a in ring],
            number=draws.phone_number(self.rng),
            hotline=draws.HOTLINES[group % len(draws.HOTLINES)],
            receive_dest=f"ringgroup-{6000 + group}",
            ring_seconds=draws.ring_seconds(self.rng, outcome),
            talk_seconds=draws.talk_seconds(self.rng) if answered else None,
            answer_by=self.rng.choice(ring).person.ext if answered and ring else None,
            outcome=None if answered else outcome,
        )

    def _outbound(self) -> None:
        found = self._idle(self._workers, 1, [])
        if not found:
            return
        outcome = draws.pick_outcome(self.rng, inbound=False)
        answered = outcome == "ANSWERED"
        self.world.start_outbound(
            ext=found[0].person.ext,
            number=draws.phone_number(self.rng),
            hotline=draws.HOTLINES[0],
            ring_seconds=draws.ring_seconds(self.rng, outcome),
            talk_seconds=draws.talk_seconds(self.rng) if answered else None,
            answered=answered,
            outcome=None if answered else outcome,
        )

    def click2call(self, ext: str, number: str, hotline: str, auto_answer: bool) -> str:
        """Start a click-to-call from `ext` (ActionError if it cannot); returns the call_id."""
        self.world.check_free(ext)
        outcome = draws.pick_outcome(self.rng, inbound=False)
        answered = outcome == "ANSWERED"
        flow = self.world.start_outbound(
            ext=ext,
            number=number,
            hotline=hotline or draws.HOTLINES[0],
            ring_seconds=draws.ring_seconds(self.rng, outcome),
            talk_seconds=draws.talk_seconds(self.rng) if answered else None,
            answered=answered,
            outcome=None if answered else outcome,
            pickup_seconds=0.3 if auto_answer else round(self.rng.uniform(1.0, 4.0), 1),
            declined=not auto_answer and self.rng.random() < CLICK2CALL_DECLINE,
        )
        return flow.flow_id


def prefill(
    rng: random.Random,
    *,
    rate: float,
    start: float,
    end: float,
    people: Sequence[Person],
    fmt: Callable[[float], str],
) -> Iterator[Cdr]:
    """Records for [start, end) at `rate` calls/min (capped), with no live state and no webhooks."""
    agents = [p for p in people if p.group >= 0]
    if rate <= 0 or not agents or end <= start:
        return
    per_second = min(rate / 60.0, MAX_PREFILL / (end - start))
    moment = start + rng.expovariate(per_second)
    while moment < end - 1:
        inbound = rng.random() < INBOUND_SHARE
        status = draws.pick_outcome(rng, inbound)
        person = rng.choice(agents)
        ring = draws.ring_seconds(rng, status)
        answered = moment + ring if status == "ANSWERED" else None
        ended = (answered + draws.talk_seconds(rng)) if answered is not None else moment + ring
        if ended > end:  # still live at start-up: not in the backlog
            moment += rng.expovariate(per_second)
            continue
        flow_id = make_uuid(rng)
        number = draws.phone_number(rng)
        hotline = draws.HOTLINES[person.group % len(draws.HOTLINES)]
        yield make_cdr(
            flow_id=draws.cdr_id(rng, flow_id),
            sip_call_id=draws.sip_call_id(rng),
            direction="inbound" if inbound else "outbound",
            extension=person.ext,
            from_number=number if inbound else hotline,
            to_number=hotline if inbound else number,
            receive_dest=f"ringgroup-{6000 + person.group}" if inbound else "",
            started=moment,
            answered=answered,
            ended=ended,
            status=status,
            cause=draws.cause_for(rng, status),
            fmt=fmt,
        )
        moment += rng.expovariate(per_second)
