"""Typed records of the PBX's answers, and the parsers that build them.

Every `from_json` takes one record (a JSON object) and every `parse_*` takes a
whole response body. They live with the PBX's quirks (numbers as strings and
strings as numbers, null / missing / "" fields, ids with trailing spaces, CDR
`direction` as 1/2/3) and raise PbxError("BAD_RESPONSE") on anything that is
not the documented shape. In a list, one malformed row is skipped and reported
through `on_skip`; a list whose rows are all malformed is refused as a whole,
because an empty answer would wrongly mean "nobody is logged in".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

from wallboard.pbx.errors import PbxError

T = TypeVar("T")
OnSkip = Callable[[PbxError], None]

# The CDR endpoint writes direction as a number although it documents words.
_CDR_DIRECTIONS = {"1": "inbound", "2": "local", "3": "outbound"}
_TRUE = frozenset({"true", "1", "yes", "t", "y", "on"})
_FALSE = frozenset({"false", "0", "no", "f", "n", "off", ""})


def _bad(message: str) -> PbxError:
    return PbxError("BAD_RESPONSE", message)


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"The PBX sent {what} that is not a JSON object.")
    return value


def field_text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    raise _bad(f"The PBX sent {key} that is not text.")


def _required(obj: dict[str, Any], key: str) -> str:
    text = field_text(obj, key)
    if not text:
        raise _bad(f"The PBX sent a record without {key}.")
    return text


def field_int(obj: dict[str, Any], key: str, default: int = 0) -> int:
    value = obj.get(key)
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return int(value)
        if isinstance(value, str):
            text = value.strip()
            return int(text) if text.lstrip("-").isdigit() else int(float(text))
        raise TypeError
    except (TypeError, ValueError, OverflowError):
        raise _bad(f"The PBX sent {key} that is not a number.") from None


def _bool(obj: dict[str, Any], key: str) -> bool:
    value = obj.get(key)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    text = field_text(obj, key).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _bad(f"The PBX sent {key} that is not true or false.")


def field_direction(obj: dict[str, Any], key: str = "direction") -> str:
    text = field_text(obj, key)
    return _CDR_DIRECTIONS.get(text, text.lower())


def _envelope(body: object, what: str) -> dict[str, Any]:
    """The record of a `{"data": {...}}` answer; a bare record is taken too."""
    obj = _object(body, what)
    inner = obj.get("data")
    return _object(inner, what) if inner is not None else obj


def _rows(body: object, what: str, parse_row: Callable[[Any], T], on_skip: OnSkip | None) -> list[T]:
    obj = _object(body, what)
    if "data" not in obj:
        raise _bad(f"The PBX sent {what} without data.")
    data = obj["data"]
    if data is None:  # an empty list marshalled as null
        return []
    if not isinstance(data, list):
        raise _bad(f"The PBX sent {what} whose data is not a list.")
    parsed: list[T] = []
    for row in data:
        try:
            parsed.append(parse_row(row))
        except PbxError as error:
            if on_skip is not None:
                on_skip(error)
    if data and not parsed:
        raise _bad(f"The PBX sent {what} in which no record could be read.")
    return parsed


@dataclass(frozen=True, slots=True)
class Token:
    token: str = field(repr=False)
    expired: int  # unix seconds
    user_id: str

    @classmethod
    def from_json(cls, obj: object) -> Self:
        record = _object(obj, "a token")
        expired = field_int(record, "expired")
        if expired <= 0:
            raise _bad("The PBX sent a token without its expiry.")
        return cls(token=_required(record, "token"), expired=expired, user_id=field_text(record, "user_id"))


@dataclass(frozen=True, slots=True)
class Account:
    user_uuid: str
    domain_uuid: str
    username: str
    api_key: str = field(repr=False)
    user_enabled: bool
    level: str

    @classmethod
    def from_json(cls, obj: object) -> Self:
        record = _object(obj, "an account")
        return cls(
            user_uuid=field_text(record, "user_uuid"),
            domain_uuid=field_text(record, "domain_uuid"),
            username=_required(record, "username"),
            api_key=field_text(record, "api_key"),
            user_enabled=_bool(record, "user_enabled"),
            level=field_text(record, "level").lower(),
        )


@dataclass(frozen=True, slots=True)
class AgentRecord:
    ext: str
    name: str
    username: str
    call_state: str  # "RINGING", "ONCALL" or "" (idle)
    call_id: str
    call_time: str  # PBX local time or ""
    destination: str
    direction: str
    user_agent: str
    network_ip: str
    domain_name: str
    extension_id: str
    user_id: str

    @classmethod
    def from_json(cls, obj: object) -> Self:
        record = _object(obj, "an agent")
        return cls(
            ext=_required(record, "extension"),
            name=field_text(record, "agent_name"),
            username=field_text(record, "username"),
            call_state=field_text(record, "call_state").upper(),
            call_id=field_text(record, "call_id"),
            call_time=field_text(record, "call_time"),
            destination=field_text(record, "destination"),
            direction=field_direction(record),
            user_agent=field_text(record, "user_agent"),
            network_ip=field_text(record, "network_ip"),
            domain_name=field_text(record, "domain_name"),
            extension_id=field_text(record, "extension_id"),
            user_id=field_text(record, "user_id"),
        )


@dataclass(frozen=True, slots=True)
class CallRecord:
    call_id: str
    context: str
    created_time: str  # PBX local time
    destination: str
    direction: str
    ip: str
    source: str
    state: str  # CS_ROUTING while ringing, CS_EXCHANGE_MEDIA once answered, ...

    @classmethod
    def from_json(cls, obj: object) -> Self:
        record = _object(obj, "a call")
        return cls(
            call_id=_required(record, "call_id"),
            context=field_text(record, "context"),
            created_time=field_text(record, "created_time"),
            destination=field_text(record, "destination"),
            direction=field_direction(record),
            ip=field_text(record, "ip"),
            source=field_text(record, "source"),
            state=field_text(record, "state").upper(),
        )


@dataclass(frozen=True, slots=True)
class StatusReport:
    counts: dict[str, int]  # "ANSWERED", "BUSY", "NO ANSWER", "FAILED", "UNKNOWN", ...
    total: int

    @classmethod
    def from_json(cls, obj: object, on_skip: OnSkip | None = None) -> Self:
        def row(item: object) -> tuple[str, int]:
            record = _object(item, "a status count")
            return _required(record, "status").upper(), field_int(record, "count")

        counts: dict[str, int] = {}
        for status, count in _rows(obj, "a call status report", row, on_skip):
            counts[status] = counts.get(status, 0) + count
        total = field_int(_object(obj, "a call status report"), "total", default=sum(counts.values()))
        return cls(counts=counts, total=total)


@dataclass(frozen=True, slots=True)
class CallIdRecord:
    call_id: str
    sip_call_id: str

    @classmethod
    def from_json(cls, obj: object) -> Self:
        record = _object(obj, "a call id")
        return cls(call_id=_required(record, "call_id"), sip_call_id=field_text(record, "sip_call_id"))


@dataclass(frozen=True, slots=True)
class EventHook:
    event_domain_uuid: str
    domain_uuid: str
    domain_name: str
    event_name: str
    callback_url: str
    callback_apikey: str = field(repr=False)

    @classmethod
    def from_json(cls, obj: object) -> Self:
        record = _object(obj, "an event hook")
        return cls(
            event_domain_uuid=_required(record, "event_domain_uuid"),
            domain_uuid=field_text(record, "domain_uuid"),
            domain_name=field_text(record, "domain_name"),
            # GET says event_name where POST takes event; take either.
            event_name=(field_text(record, "event_name") or field_text(record, "event")).lower(),
            callback_url=field_text(record, "callback_url"),
            callback_apikey=field_text(record, "callback_apikey"),
        )


@dataclass(frozen=True, slots=True)
class Cdr:
    id: str
    sip_call_id: str
    cause: str
    duration: int
    direction: str  # "inbound", "local" or "outbound"
    recording_url: str
    extension: str
    from_number: str
    to_number: str
    receive_dest: str
    time_started: str  # PBX local time
    time_answered: str  # "" when never answered
    time_ended: str
    status: str  # ANSWERED, BUSY, NO ANSWER, FAILED, UNKNOWN

    @classmethod
    def from_json(cls, obj: object) -> Self:
        record = _object(obj, "a CDR")
        return cls(
            id=_required(record, "id"),
            sip_call_id=field_text(record, "sip_call_id"),
            cause=field_text(record, "cause"),
            duration=field_int(record, "duration"),
            direction=field_direction(record),
            recording_url=field_text(record, "recording_url"),
            extension=field_text(record, "extension"),
            from_number=field_text(record, "from_number"),
            to_number=field_text(record, "to_number"),
            receive_dest=field_text(record, "receive_dest"),
            time_started=field_text(record, "time_started"),
            time_answered=field_text(record, "time_answered"),
            time_ended=field_text(record, "time_ended"),
            status=field_text(record, "status").upper(),
        )


@dataclass(frozen=True, slots=True)
class CdrPage:
    records: list[Cdr]
    total: int
    page: int
    limit: int


@dataclass(frozen=True, slots=True)
class CdrScroll:
    records: list[Cdr]
    scroll_id: str | None  # None: nothing more to fetch


@dataclass(frozen=True, slots=True)
class ActionResult:
    call_id: str
    ext: str

    @classmethod
    def from_json(cls, obj: object) -> Self:
        record = _object(obj, "an action result")
        return cls(call_id=field_text(record, "call_id"), ext=field_text(record, "ext"))


@dataclass(frozen=True, slots=True)
class Click2CallResult:
    call_id: str | None
    status: str  # "success"
    message: str

    @classmethod
    def from_json(cls, obj: object) -> Self:
        record = _object(obj, "a click-to-call result")
        return cls(
            call_id=field_text(record, "call_id") or None,
            status=field_text(record, "status").lower(),
            message=field_text(record, "message"),
        )


@dataclass(frozen=True, slots=True)
class TenantUser:
    user_id: str
    username: str
    password: str = field(repr=False)
    api_key: str = field(repr=False)
    group: str
    enabled: bool

    @classmethod
    def from_json(cls, obj: object) -> Self:
        record = _object(obj, "a tenant user")
        return cls(
            user_id=field_text(record, "user_id"),
            username=field_text(record, "username"),
            password=field_text(record, "password"),
            api_key=field_text(record, "api_key"),
            group=field_text(record, "group"),
            enabled=_bool(record, "enabled"),
        )


@dataclass(frozen=True, slots=True)
class Tenant:
    domain: str
    tenant_url: str
    outbound_proxy: str
    port: str
    transports: str
    wss: str
    user: TenantUser | None  # only in the answer to create

    @classmethod
    def from_json(cls, obj: object) -> Self:
        record = _object(obj, "a tenant")
        user = record.get("user")
        return cls(
            domain=_required(record, "domain"),
            tenant_url=field_text(record, "tenant_url"),
            outbound_proxy=field_text(record, "outbound_proxy"),
            port=field_text(record, "port"),
            transports=field_text(record, "transports"),
            wss=field_text(record, "wss"),
            user=TenantUser.from_json(user) if user is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Extension:
    ext: str
    pwd: str = field(repr=False)
    enabled: bool

    @classmethod
    def from_json(cls, obj: object) -> Self:
        record = _object(obj, "an extension")
        return cls(ext=_required(record, "ext"), pwd=field_text(record, "pwd"), enabled=_bool(record, "enabled"))


def parse_token(body: object) -> Token:
    return Token.from_json(_envelope(body, "a token answer"))


def parse_account(body: object) -> Account:
    return Account.from_json(_envelope(body, "a login answer"))


def parse_agents(body: object, on_skip: OnSkip | None = None) -> list[AgentRecord]:
    return _rows(body, "an agent list", AgentRecord.from_json, on_skip)


def parse_calls(body: object, on_skip: OnSkip | None = None) -> list[CallRecord]:
    return _rows(body, "a call list", CallRecord.from_json, on_skip)


def parse_call_ids(body: object, on_skip: OnSkip | None = None) -> list[CallIdRecord]:
    return _rows(body, "a call id list", CallIdRecord.from_json, on_skip)


def parse_events(body: object, on_skip: OnSkip | None = None) -> list[EventHook]:
    return _rows(body, "an event list", EventHook.from_json, on_skip)


def parse_status(body: object, on_skip: OnSkip | None = None) -> StatusReport:
    return StatusReport.from_json(body, on_skip)


def parse_cdr(body: object) -> Cdr:
    return Cdr.from_json(_envelope(body, "a CDR"))


def parse_cdr_page(body: object, on_skip: OnSkip | None = None) -> CdrPage:
    records = _rows(body, "a CDR page", Cdr.from_json, on_skip)
    obj = _object(body, "a CDR page")
    return CdrPage(
        records=records,
        total=field_int(obj, "total"),
        page=field_int(obj, "page", default=1),
        limit=field_int(obj, "limit", default=len(records)),
    )


def parse_cdr_scroll(body: object, on_skip: OnSkip | None = None) -> CdrScroll:
    records = _rows(body, "a CDR batch", Cdr.from_json, on_skip)
    return CdrScroll(records=records, scroll_id=field_text(_object(body, "a CDR batch"), "scroll_id") or None)


def parse_action(body: object) -> ActionResult:
    return ActionResult.from_json(_object(body, "an action answer"))


def parse_click2call(body: object) -> Click2CallResult:
    return Click2CallResult.from_json(_object(body, "a click-to-call answer"))


def parse_flag(body: object, key: str) -> bool:
    """`{"created": true}`, `{"deleted": true}` and the like."""
    obj = _object(body, f"a {key} answer")
    if key not in obj:
        raise _bad(f"The PBX's answer lacks {key}.")
    return _bool(obj, key)


def parse_tenant(body: object) -> Tenant:
    return Tenant.from_json(_envelope(body, "a tenant"))


def parse_extension(body: object) -> Extension:
    return Extension.from_json(_envelope(body, "an extension"))
