"""Calls over time: random arrivals, softphones logging in and out, and today's backlog.

Two profiles. "flat": calls at `rate` per minute around the clock, agents logging in and
out at random. "day": `rate` is the peak of the day's curve (day.py), agents work their
shifts and take their breaks, and calls never come faster than the agents logged in can
take them; today's backlog follows the same curve and the same shifts.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from wallboard.sim import day, draws
from wallboard.sim.cdrs import Cdr, make_cdr
from wallboard.sim.day import PROFILES, Rota
from wallboard.sim.roster import Person, make_person, make_uuid
from wallboard.sim.world import Agent, World

MAX_PREFILL = 20_000  # today's backlog is capped so that start-up stays fast and small
INBOUND_SHARE = 0.65
CLICK2CALL_DECLINE = 0.08


class Traffic:
    """Drives `world` with random calls; rate 0 stops calls and log-ins and log-outs.

    Log-ins go with traffic so that a test which scripts its calls (rate 0) owns every agent.
    """

    def __init__(self, world: World, *, rota: Rota | None = None, profile: str = "flat",
                 floor: float = 0.0) -> None:  # fmt: skip
        self.world = world
        self.rng = world.rng
        self.rate = 0.0
        self.floor = floor
        self._epoch = 0
        self._workers = [a for a in world.agents.values() if a.person.group >= 0]
        self.rota = rota or Rota([a.person.ext for a in self._workers], salt="", local=world.local, floor=floor)
        self.profile = profile
        self.per_minute = 0.0  # the day profile's arrival rate now
        self._arrivals = 0  # bumped whenever per_minute is set again: cancels the arrival drawn before
        groups: dict[int, list[Agent]] = {}
        for agent in self._workers:
            groups.setdefault(agent.person.group, []).append(agent)
        self._groups = list(groups.values())

    def set_rate(self, rate: float, profile: str | None = None) -> None:
        """`rate`: calls per minute (flat) or at the peak (day)."""
        if profile is not None:
            if profile not in PROFILES:
                raise ValueError(f"profile must be one of {', '.join(PROFILES)}")
            self.profile = profile
        self.rate = max(0.0, rate)
        self._epoch += 1
        self.per_minute = 0.0
        if self.rate <= 0:
            return
        if self.profile == "day":
            for agent in self._workers:
                self._follow_rota(agent, self._epoch)
            self._retune(self._epoch)
            return
        self.world.schedule(self.rng.expovariate(self.rate / 60.0), self._arrive, self._epoch)
        for agent in self._workers:
            mean = 1800.0 if agent.logged_in else 240.0
            self.world.schedule(self.rng.expovariate(1 / mean), self._toggle, agent, self._epoch)

    def add_extension(self, ext: str) -> Agent:
        """A new extension (the tenant API's): logged out, then in the churn or on a shift."""
        person = make_person(ext, len(self._workers), self.rng)
        agent = self.world.add_agent(person, logged_in=False)
        self._workers.append(agent)
        while len(self._groups) <= person.group:
            self._groups.append([])
        self._groups[person.group].append(agent)
        self.rota.add(ext)
        if self.rate > 0 and self.profile == "day":
            self._follow_rota(agent, self._epoch)
        elif self.rate > 0:
            self.world.schedule(self.rng.expovariate(1 / 240.0), self._toggle, agent, self._epoch)
        return agent

    def logged_in(self) -> int:
        return sum(1 for a in self._workers if a.logged_in)

    def describe(self) -> dict[str, Any]:
        return {"rate": self.rate, "profile": self.profile, "floor": self.floor,
                "calls_per_minute": round(self.per_minute if self.profile == "day" else self.rate, 3),
                "logged_in": self.logged_in()}  # fmt: skip

    # -- the day profile ---------------------------------------------------------------

    def _follow_rota(self, agent: Agent, epoch: int) -> None:
        if epoch != self._epoch:
            return
        world, ext = self.world, agent.person.ext
        on = self.rota.on(ext, world.now)
        if on and not agent.logged_in:
            world.login(ext)
        elif not on and agent.logged_in:
            if agent.leg is not None:
                world.schedule(30.0, self._follow_rota, agent, epoch)  # nobody logs out mid-call
                return
            world.logout(ext)
        world.schedule(self.rota.next_change(ext, world.now) - world.now, self._follow_rota, agent, epoch)

    def _retune(self, epoch: int) -> None:
        """Every slot: the curve's rate now, capped by what the agents logged in can carry."""
        if epoch != self._epoch:
            return
        world = self.world
        hour = (world.now - self.rota.midnight(world.now)) / day.HOUR
        self.per_minute = min(self.rate * day.level(hour, self.floor), day.carry(self.logged_in()))
        self._arrivals += 1
        if self.per_minute > 0:
            world.schedule(self.rng.expovariate(self.per_minute / 60.0), self._arrive_now, epoch, self._arrivals)
        elapsed = (world.now - self.rota.midnight(world.now)) % day.SLOT_SECONDS
        world.schedule(day.SLOT_SECONDS - elapsed, self._retune, epoch)

    def _arrive_now(self, epoch: int, arrivals: int) -> None:
        if epoch != self._epoch or arrivals != self._arrivals:
            return
        if self.rng.random() < INBOUND_SHARE:
            self._inbound()
        else:
            self._outbound()
        self.world.schedule(self.rng.expovariate(self.per_minute / 60.0), self._arrive_now, epoch, arrivals)

    # -- the flat profile --------------------------------------------------------------

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
            receive_dest=draws.ring_group(group),
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
            receive_dest=draws.ring_group(person.group) if inbound else "",
            started=moment,
            answered=answered,
            ended=ended,
            status=status,
            cause=draws.cause_for(rng, status),
            fmt=fmt,
        )
        moment += rng.expovariate(per_second)


def prefill_day(
    rng: random.Random,
    *,
    rate: float,
    floor: float,
    rota: Rota,
    start: float,
    end: float,
    people: Sequence[Person],
    fmt: Callable[[float], str],
) -> Iterator[Cdr]:
    """Records for [start, end) as the day profile makes them live: the curve's rate capped
    by the agents on shift, each call given to an agent on shift and free at that moment."""
    workers = [p for p in people if p.group >= 0]
    if rate <= 0 or not workers or end <= start:
        return
    staffed = rota.staffed(start, end, day.SLOT_SECONDS)
    midnight = rota.midnight(start)
    per_minute = []
    for k, on in enumerate(staffed):
        hour = (start + (k + 0.5) * day.SLOT_SECONDS - midnight) / day.HOUR
        per_minute.append(min(rate * day.level(hour, floor), day.carry(on)))
    expected = sum(per_minute) * day.SLOT_SECONDS / 60.0
    thin = min(1.0, MAX_PREFILL / expected) if expected > 0 else 0.0
    busy_until: dict[str, float] = {}
    spans = {p.ext: rota.spans(p.ext, start, end) for p in workers}
    for k, lam in enumerate(per_minute):
        if lam <= 0 or thin <= 0:
            continue
        per_second = lam * thin / 60.0
        slot_end = min(end - 1, start + (k + 1) * day.SLOT_SECONDS)
        moment = start + k * day.SLOT_SECONDS + rng.expovariate(per_second)
        while moment < slot_end:
            made = _backlog_call(rng, moment, workers, spans, busy_until, end, fmt)
            if made is not None:
                yield made
            moment += rng.expovariate(per_second)


def _backlog_call(rng: random.Random, moment: float, workers: Sequence[Person],
                  spans: dict[str, list[day.Interval]], busy_until: dict[str, float], end: float,
                  fmt: Callable[[float], str]) -> Cdr | None:  # fmt: skip
    """One call of the day backlog; None for one that is still live at `end` or has nobody to make it."""
    inbound = rng.random() < INBOUND_SHARE
    status = draws.pick_outcome(rng, inbound)
    person = None
    first = rng.randrange(len(workers))
    for index in range(len(workers)):
        candidate = workers[(first + index) % len(workers)]
        if busy_until.get(candidate.ext, 0.0) <= moment and any(
                lo <= moment < hi for lo, hi in spans[candidate.ext]):
            person = candidate
            break
    if person is None and not inbound:
        return None
    ring = draws.ring_seconds(rng, status)
    if person is None:  # every phone busy: the caller hears busy at once, as live
        status, ring = "BUSY", 0.0
    answered = moment + ring if status == "ANSWERED" else None
    ended = (answered + draws.talk_seconds(rng)) if answered is not None else moment + ring
    if ended > end:  # still live at start-up: not in the backlog
        return None
    if person is not None:
        busy_until[person.ext] = ended
    group = person.group if person is not None else rng.randrange(max(1, len(workers) // 10))
    flow_id = make_uuid(rng)
    number = draws.phone_number(rng)
    hotline = draws.HOTLINES[group % len(draws.HOTLINES)]
    return make_cdr(
        flow_id=draws.cdr_id(rng, flow_id),
        sip_call_id=draws.sip_call_id(rng),
        direction="inbound" if inbound else "outbound",
        extension=person.ext if person is not None else "",
        from_number=number if inbound else hotline,
        to_number=hotline if inbound else number,
        receive_dest=draws.ring_group(group) if inbound else "",
        started=moment,
        answered=answered,
        ended=ended,
        status=status,
        cause=draws.cause_for(rng, status),
        fmt=fmt,
    )
