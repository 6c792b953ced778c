"""What calls look like: numbers, hotlines, outcomes and the time they take."""

from __future__ import annotations

import functools
import math
import random
import string

HOTLINES = ("19001919", "19006868", "02873005588", "02473001122")
MAX_DEFAULT_RATE = 300.0  # calls/min; the vendor's platform strains well before 20 calls/s
_MOBILE_PREFIXES = ("090", "091", "093", "096", "097", "098", "032", "035", "038", "086", "088",
                    "089", "070", "077", "079", "083", "085")  # fmt: skip
_INBOUND_OUTCOMES = (("ANSWERED", 70), ("NO ANSWER", 12), ("BUSY", 8), ("FAILED", 6),
                     ("UNKNOWN", 4))  # fmt: skip
_OUTBOUND_OUTCOMES = (("ANSWERED", 55), ("NO ANSWER", 20), ("BUSY", 15), ("FAILED", 7),
                      ("UNKNOWN", 3))  # fmt: skip
_CAUSES = {
    "ANSWERED": ("NORMAL_CLEARING",),
    "NO ANSWER": ("NO_ANSWER", "ORIGINATOR_CANCEL", "NO_USER_RESPONSE"),
    "BUSY": ("USER_BUSY", "NORMAL_CLEARING"),
    "FAILED": ("CALL_REJECTED", "NO_ROUTE_DESTINATION", "UNALLOCATED_NUMBER"),
    "UNKNOWN": ("NORMAL_UNSPECIFIED", "RECOVERY_ON_TIMER_EXPIRE"),
}
_SIP_ALPHABET = string.ascii_letters + string.digits


def default_rate(agents: int, profile: str = "flat") -> float:
    """Calls per minute: all day long (flat), or at the day's peak (day), about 45 % of
    what the agents on the peak's shifts can carry."""
    return min(agents * (0.25 if profile == "day" else 0.6), MAX_DEFAULT_RATE)


@functools.cache
def ring_group(group: int) -> str:
    """A team's ring group (one string per team, shared by all its records)."""
    return f"ringgroup-{6000 + group}"


def phone_number(rng: random.Random) -> str:
    return rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10_000_000):07d}"


def sip_call_id(rng: random.Random) -> str:
    return "".join(rng.choices(_SIP_ALPHABET, k=32))


def pick_outcome(rng: random.Random, inbound: bool) -> str:
    table = _INBOUND_OUTCOMES if inbound else _OUTBOUND_OUTCOMES
    return rng.choices([s for s, _ in table], weights=[w for _, w in table])[0]


def cause_for(rng: random.Random, status: str) -> str:
    return rng.choice(_CAUSES[status])


def _lognormal(rng: random.Random, median: float, sigma: float, low: float, high: float) -> float:
    return min(high, max(low, rng.lognormvariate(math.log(median), sigma)))


def ring_seconds(rng: random.Random, outcome: str) -> float:
    """How long the phones ring before the outcome is known."""
    if outcome == "ANSWERED":
        return round(_lognormal(rng, 7.0, 0.6, 2.0, 25.0), 1)
    if outcome == "NO ANSWER":
        return round(rng.uniform(20.0, 30.0), 1)
    if outcome == "BUSY":
        return round(rng.uniform(1.0, 4.0), 1)
    if outcome == "FAILED":
        return round(rng.uniform(0.2, 2.0), 1)
    return round(rng.uniform(3.0, 15.0), 1)


def talk_seconds(rng: random.Random) -> float:
    return round(_lognormal(rng, 90.0, 0.8, 20.0, 600.0), 1)


def recording_url(flow_id: str) -> str:
    return f"https://recording.sim.tel4vn.com/{flow_id}.wav"


def cdr_id(rng: random.Random, flow_id: str) -> str:
    # About one id in twenty carries the trailing space the real PBX sometimes adds.
    return flow_id + " " if rng.random() < 0.05 else flow_id
