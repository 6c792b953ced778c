"""The PBX's webhook events (`ringing`, `answered`, `hangup`, `cdr`): a body, checked and
typed as a `CallEvent`, with the same field readers as the API's records (models.py).

Everything is checked before the state is touched, so a bad event is refused whole and
never half-applied; the error names the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from wallboard.pbx import models
from wallboard.pbx.errors import PbxError
from wallboard.pbx.times import PbxTime

PHASES = {"ringing": 1, "answered": 2, "hangup": 3, "cdr": 4}
MAX_CALL_ID = 200
# An event time this far ahead of our clock is not believed (the PBX's clock is off, or
# the body lies): the event counts as happening when it arrived. A call's own times (the
# CDR's start, answer and end, which place it in the day's hours) get minutes of slack, so
# a PBX whose clock runs a little fast keeps them; further ahead they are dropped.
FUTURE_SLACK_MS = 5000
CALL_TIME_SLACK_MS = 300_000


class BadEvent(ValueError):
    """A body refused whole: 400 (malformed) or 422 (an event we do not handle)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class CallEvent:
    """A webhook, checked and typed."""

    state: str
    call_id: str
    direction: str = ""
    from_number: str = ""
    to_number: str = ""
    hotline: str = ""
    at: int = 0  # when it happened, epoch ms (event time, else when we received it)
    received: int = 0  # our clock when it arrived
    duration: int | None = None
    billsec: int | None = None
    status: str = ""
    extension: str = ""
    time_started: int | None = None
    time_answered: int | None = None
    time_ended: int | None = None


def _text(body: dict[str, Any], key: str) -> str:
    try:
        return models.field_text(body, key)
    except PbxError:
        raise BadEvent(400, f"field {key!r} must be a string") from None


def _number(body: dict[str, Any], key: str) -> int | None:
    if body.get(key) in (None, ""):
        return None
    try:
        return models.field_int(body, key)
    except PbxError:
        raise BadEvent(400, f"field {key!r} must be a number") from None


def _time(body: dict[str, Any], key: str, clock: PbxTime, received: int, slack: int = CALL_TIME_SLACK_MS) -> int | None:
    """A PBX local time as epoch ms; one too far in the future is not believed."""
    when = clock.parse(body.get(key))
    return when if when is not None and when <= received + slack else None


def parse_event(raw: bytes, clock: PbxTime, received: int) -> CallEvent:
    """A webhook body as a CallEvent, or BadEvent naming the problem."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadEvent(400, "body is not JSON") from None
    if not isinstance(body, dict):
        raise BadEvent(400, "body must be a JSON object")
    for key in ("state", "call_id"):
        if not isinstance(body.get(key), str) or not body[key].strip():
            raise BadEvent(400, f"field {key!r} is missing or not a string")
    state = body["state"].strip().lower()
    if state not in PHASES:
        raise BadEvent(422, f"unknown state {body['state'][:40]!r}; expected one of {sorted(PHASES)}")
    call_id = body["call_id"].strip()
    if len(call_id) > MAX_CALL_ID:
        raise BadEvent(400, "field 'call_id' is too long")
    direction = _text(body, "direction")  # checked as text, then read as the API reads it
    direction = models.field_direction(body) if direction else ""
    if direction not in ("inbound", "outbound", "local"):
        direction = ""
    return CallEvent(
        state=state, call_id=call_id, direction=direction,
        from_number=_text(body, "from_number"), to_number=_text(body, "to_number"),
        hotline=_text(body, "hotline"),
        at=_time(body, "time", clock, received, FUTURE_SLACK_MS) or received,
        received=received, duration=_number(body, "duration"), billsec=_number(body, "billsec"),
        status=_text(body, "status").upper(), extension=_text(body, "extension"),
        time_started=_time(body, "time_started", clock, received),
        time_answered=_time(body, "time_answered", clock, received),
        time_ended=_time(body, "time_ended", clock, received),
    )
