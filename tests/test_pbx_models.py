from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wallboard.pbx import models
from wallboard.pbx.errors import PbxError
from wallboard.pbx.models import (
    AgentRecord,
    Cdr,
    parse_account,
    parse_action,
    parse_agents,
    parse_call_ids,
    parse_calls,
    parse_cdr,
    parse_cdr_page,
    parse_cdr_scroll,
    parse_click2call,
    parse_events,
    parse_extension,
    parse_flag,
    parse_status,
    parse_tenant,
    parse_token,
)

# The reference's own examples, verbatim (pbx-api-reference.md).
REF_LOGIN = {
    "data": {
        "user_uuid": "aaaaaaaa-1111-2222-3333-eeeeeeee",
        "domain_uuid": "dddddddd-1111-2222-3333-eeeeeeee",
        "username": "foo",
        "api_key": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeee",
        "user_enabled": "true",
        "level": "admin",
    }
}
REF_TOKEN = {
    "data": {
        "expired": 1613636318,
        "token": (
            "eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIiwiaWF0IjoxNjEzNjMyNzc4fQ.dGhpcyBpcyB0ZXN0IGRhdGE="
        ),
        "user_id": "aaaaaaaa-1111-2222-3333-eeeeeeee",
    }
}
REF_EVENTS = {
    "data": [
        {
            "event_domain_uuid": "avavavav-1111-2222-3333-eeeeeeee",
            "domain_uuid": "dddddddd-1111-2222-3333-eeeeeeee",
            "domain_name": "test.tel4vn.com",
            "event_name": "hangup",
            "callback_url": "https://webhook.demo/",
            "callback_apikey": "foo",
        }
    ]
}
REF_CDR_ANSWERED = {
    "id": "ad4c9b90-c071-405a-9723-980d2e5e1623",
    "sip_call_id": "112233aabbccddee..",
    "cause": "NORMAL_CLEARING",
    "duration": 11,
    "direction": 3,
    "recording_url": "https://recording.demo/ad4c9b90-c071-405a-9723-980d2e5e1623",
    "extension": "101",
    "from_number": "19001919",
    "to_number": "0899888999",
    "receive_dest": "",
    "time_started": "2021-02-17 17:30:35",
    "time_answered": "2021-02-17 17:30:43",
    "time_ended": "2021-02-17 17:30:46",
    "status": "ANSWERED",
}
REF_CDR_BUSY = {
    "id": "01b7d166-b564-42ec-80a1-4ad343225934 ",
    "sip_call_id": "aabbccddee112233..",
    "cause": "NORMAL_CLEARING",
    "duration": 7,
    "direction": 3,
    "recording_url": "",
    "extension": "101",
    "from_number": "19001919",
    "to_number": "0899888999",
    "receive_dest": "",
    "time_started": "2021-02-18 17:20:58",
    "time_answered": "",
    "time_ended": "2021-02-18 17:21:05",
    "status": "BUSY",
}
REF_CALLS = {
    "data": [
        {
            "call_id": "01b7d166-b564-42ec-80a1-4ad343225934",
            "context": "test.tel4vn.com",
            "created_time": "2021-06-08 17:37:37",
            "destination": "0899123456",
            "direction": "outbound",
            "ip": "1.2.3.4",
            "source": "101",
            "state": "CS_EXECUTE",
        }
    ],
    "total": 1,
}
REF_CALL_IDS = {
    "data": [
        {
            "call_id": "181ba2e3-4528-4e8c-80b9-2b998af93c5b",
            "sip_call_id": "0.4cCkoEATg8DPFKD7jSOgueuiDCwuxH",
        },
        {
            "call_id": "bc018081-0451-4d3b-bb4c-98154b35962f",
            "sip_call_id": "4Kh4ppE5xoBrPzqpFiJkVAtZ2BXb2F-s",
        },
    ],
    "total": 10,
}
REF_STATUS = {
    "data": [
        {"count": 15225, "status": "ANSWERED"},
        {"count": 7161, "status": "BUSY"},
        {"count": 1515, "status": "FAILED"},
        {"count": 59, "status": "UNKNOWN"},
        {"count": 700, "status": "NO ANSWER"},
    ],
    "total": 24660,
}
REF_AGENT_1 = {
    "agent_name": "Test 01",
    "call_id": "6a65480c-8bc7-4d4a-9aae-4488d67bf711",
    "call_state": "RINGING",
    "call_time": "2021-07-01 09:30:00",
    "destination": "0899123456",
    "direction": "outbound",
    "domain_id": "9eb34970-dec2-466d-98c7-9532439be7eb",
    "domain_name": "test01.tel4vn.com",
    "extension": "101",
    "extension_id": "663dec3e-a405-4372-9991-8e6ae9f9788a",
    "network_ip": "10.0.0.15",
    "server_host": "10.0.0.1",
    "user_agent": "MicroSIP/3.20.6",
    "user_id": "41d0f364-79f8-4abb-9834-ee803320ea8d",
    "username": "test01",
}
REF_AGENT_2 = {
    **REF_AGENT_1,
    "agent_name": "Test 02",
    "call_id": "faf6a9ae-c475-4980-8a85-24710ab9d6cd",
    "call_state": "ONCALL",
    "call_time": "2021-07-01 09:31:00",
    "destination": "0899654321",
    "domain_name": "test02.tel4vn.com",
    "extension": "102",
    "network_ip": "10.0.0.16",
    "user_id": "56df3364-f377-43d3-b315-db1dc011e4de",
    "username": "test02",
}
REF_TENANT_CREATED = {
    "created": True,
    "data": {
        "domain": "test01.tel4vn.com",
        "tenant_url": "https://pbx/v1/tenant/41d0f364-79f8-4abb-9834-ee803320ea8d",
        "outbound_proxy": "pbx01.tel4vn.com:50061",
        "port": "50061",
        "transports": "both",
        "wss": "wss://pbx01.tel4vn.com",
        "user": {
            "api_key": "5294243b-1ace-45a9-b2ef-d66222cb1729",
            "enabled": "true",
            "group": "admin",
            "password": "abcabc123321",
            "user_id": "938b4d25-4b25-4f32-9169-7411734ef990",
            "username": "admin",
        },
    },
}


def test_login_example() -> None:
    account = parse_account(REF_LOGIN)
    assert account.username == "foo"
    assert account.user_enabled is True
    assert account.level == "admin"
    assert account.api_key == "aaaaaaaa-bbbb-cccc-dddd-eeeeeeee"
    assert "aaaaaaaa-bbbb" not in repr(account)


def test_token_example_and_its_secret_stays_out_of_repr() -> None:
    token = parse_token(REF_TOKEN)
    assert token.expired == 1613636318
    assert token.user_id == "aaaaaaaa-1111-2222-3333-eeeeeeee"
    assert token.token.startswith("eyJhbGci")
    assert "eyJ" not in repr(token)


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"expired": 0, "token": "t"}},
        {"data": {"expired": 1613636318, "token": ""}},
        {"data": {"expired": "soon", "token": "t"}},
        {"data": "token"},
        [],
    ],
)
def test_token_without_the_essentials_is_refused(body: object) -> None:
    with pytest.raises(PbxError) as caught:
        parse_token(body)
    assert caught.value.code == "BAD_RESPONSE"


def test_token_expiry_as_string() -> None:
    assert parse_token({"data": {"expired": "1613636318", "token": "t"}}).expired == 1613636318


def test_agents_example() -> None:
    agents = parse_agents({"data": [REF_AGENT_1, REF_AGENT_2], "total": 2})
    assert agents[0] == AgentRecord(
        ext="101",
        name="Test 01",
        username="test01",
        call_state="RINGING",
        call_id="6a65480c-8bc7-4d4a-9aae-4488d67bf711",
        call_time="2021-07-01 09:30:00",
        destination="0899123456",
        direction="outbound",
        user_agent="MicroSIP/3.20.6",
        network_ip="10.0.0.15",
        domain_name="test01.tel4vn.com",
        extension_id="663dec3e-a405-4372-9991-8e6ae9f9788a",
        user_id="41d0f364-79f8-4abb-9834-ee803320ea8d",
    )
    assert agents[1].call_state == "ONCALL"


def test_agent_call_state_null_missing_empty_and_lower_case() -> None:
    idle_null = {**REF_AGENT_1, "call_state": None, "call_id": None, "call_time": ""}
    idle_missing = {k: v for k, v in REF_AGENT_1.items() if k != "call_state"}
    idle_empty = {**REF_AGENT_1, "call_state": ""}
    lower = {**REF_AGENT_1, "call_state": " oncall "}
    agents = parse_agents({"data": [idle_null, idle_missing, idle_empty, lower]})
    assert [a.call_state for a in agents] == ["", "", "", "ONCALL"]
    assert agents[0].call_id == ""


def test_agent_extension_as_number_and_trailing_space() -> None:
    agents = parse_agents({"data": [{**REF_AGENT_1, "extension": 101}, {**REF_AGENT_2, "extension": "102 "}]})
    assert [a.ext for a in agents] == ["101", "102"]


def test_malformed_row_is_skipped_and_reported() -> None:
    skipped: list[PbxError] = []
    body = {
        "data": [
            REF_AGENT_1,
            {"agent_name": "no extension"},
            "junk",
            {**REF_AGENT_2, "extension": {}},
        ]
    }
    agents = parse_agents(body, skipped.append)
    assert [a.ext for a in agents] == ["101"]
    assert len(skipped) == 3
    assert all(error.code == "BAD_RESPONSE" for error in skipped)


def test_a_list_of_nothing_but_junk_is_refused() -> None:
    with pytest.raises(PbxError) as caught:
        parse_agents({"data": [1, "two", None]})
    assert caught.value.code == "BAD_RESPONSE"


def test_empty_lists_including_null() -> None:
    assert parse_agents({"data": [], "total": 0}) == []
    assert parse_agents({"data": None, "total": 0}) == []
    assert parse_calls({"data": None}) == []


@pytest.mark.parametrize(
    "body",
    [None, [], "data", 42, {}, {"total": 3}, {"data": {}}, {"data": "x"}, {"data": 1}],
)
@pytest.mark.parametrize("parse", [parse_agents, parse_calls, parse_call_ids, parse_events, parse_status])
def test_list_bodies_of_the_wrong_shape(parse: Any, body: object) -> None:
    with pytest.raises(PbxError) as caught:
        parse(body)
    assert caught.value.code == "BAD_RESPONSE"


def test_calls_example() -> None:
    (call,) = parse_calls(REF_CALLS)
    assert call.call_id == "01b7d166-b564-42ec-80a1-4ad343225934"
    assert call.context == "test.tel4vn.com"
    assert call.created_time == "2021-06-08 17:37:37"
    assert (call.source, call.destination, call.direction) == ("101", "0899123456", "outbound")
    assert (call.ip, call.state) == ("1.2.3.4", "CS_EXECUTE")


def test_call_ids_example() -> None:
    records = parse_call_ids(REF_CALL_IDS)
    assert [r.sip_call_id for r in records] == [
        "0.4cCkoEATg8DPFKD7jSOgueuiDCwuxH",
        "4Kh4ppE5xoBrPzqpFiJkVAtZ2BXb2F-s",
    ]


def test_status_example() -> None:
    report = parse_status(REF_STATUS)
    assert report.counts == {
        "ANSWERED": 15225,
        "BUSY": 7161,
        "FAILED": 1515,
        "UNKNOWN": 59,
        "NO ANSWER": 700,
    }
    assert report.total == 24660


def test_status_quirks() -> None:
    report = parse_status({"data": [{"count": "5", "status": "answered"}, {"count": 2, "status": "BUSY"}]})
    assert report.counts == {"ANSWERED": 5, "BUSY": 2}
    assert report.total == 7  # no total: the sum
    assert parse_status({"data": None, "total": 0}).counts == {}


def test_events_example() -> None:
    (hook,) = parse_events(REF_EVENTS)
    assert hook.event_domain_uuid == "avavavav-1111-2222-3333-eeeeeeee"
    assert hook.event_name == "hangup"
    assert hook.callback_url == "https://webhook.demo/"
    assert hook.callback_apikey == "foo"
    assert hook.domain_name == "test.tel4vn.com"


def test_cdr_examples_with_numeric_direction_and_trailing_space() -> None:
    answered, busy = parse_cdr_page(
        {"data": [REF_CDR_ANSWERED, REF_CDR_BUSY], "limit": 10, "page": 1, "total": 22}
    ).records
    assert answered.direction == "outbound"
    assert answered.duration == 11
    assert answered.time_answered == "2021-02-17 17:30:43"
    assert busy.id == "01b7d166-b564-42ec-80a1-4ad343225934"
    assert busy.time_answered == ""
    assert busy.status == "BUSY"


@pytest.mark.parametrize(
    ("direction", "word"),
    [
        (1, "inbound"),
        (2, "local"),
        (3, "outbound"),
        ("1", "inbound"),
        ("Outbound", "outbound"),
        (None, ""),
    ],
)
def test_cdr_direction(direction: object, word: str) -> None:
    assert Cdr.from_json({**REF_CDR_ANSWERED, "direction": direction}).direction == word


def test_cdr_numbers_as_strings_and_nulls() -> None:
    cdr = Cdr.from_json({**REF_CDR_ANSWERED, "duration": "11", "recording_url": None, "receive_dest": None})
    assert cdr.duration == 11
    assert cdr.recording_url == ""
    assert Cdr.from_json({**REF_CDR_ANSWERED, "duration": 11.0}).duration == 11
    assert Cdr.from_json({**REF_CDR_ANSWERED, "duration": ""}).duration == 0


def test_cdr_page_and_scroll() -> None:
    page = parse_cdr_page({"data": [REF_CDR_ANSWERED, REF_CDR_BUSY], "limit": "10", "page": 1, "total": 22})
    assert (page.total, page.page, page.limit, len(page.records)) == (22, 1, 10, 2)
    scroll = parse_cdr_scroll({"data": [REF_CDR_ANSWERED], "scroll_id": "111222333444aaabbbcccddd=="})
    assert scroll.scroll_id == "111222333444aaabbbcccddd=="
    assert parse_cdr_scroll({"data": [], "scroll_id": ""}).scroll_id is None
    assert parse_cdr_scroll({"data": []}).scroll_id is None


def test_single_cdr_bare_or_wrapped() -> None:
    assert parse_cdr(REF_CDR_BUSY).id == "01b7d166-b564-42ec-80a1-4ad343225934"
    assert parse_cdr({"data": REF_CDR_BUSY}).status == "BUSY"
    with pytest.raises(PbxError):
        parse_cdr({"data": [REF_CDR_BUSY]})


def test_action_and_click2call() -> None:
    result = parse_action({"status": "success", "call_id": "01b7d166-b564-42ec-80a1-4ad343225934", "ext": "101"})
    assert (result.call_id, result.ext) == ("01b7d166-b564-42ec-80a1-4ad343225934", "101")
    started = parse_click2call({"status": "success", "call_id": "01b7d166-b564-42ec-80a1-4ad343225934"})
    assert started.call_id == "01b7d166-b564-42ec-80a1-4ad343225934"
    assert started.status == "success"
    assert parse_click2call({"status": "success"}).call_id is None


def test_flags() -> None:
    assert parse_flag({"created": True}, "created") is True
    assert parse_flag({"deleted": "true"}, "deleted") is True
    assert parse_flag({"created": False}, "created") is False
    with pytest.raises(PbxError):
        parse_flag({"ok": True}, "created")
    with pytest.raises(PbxError):
        parse_flag({"created": "maybe"}, "created")


def test_tenant_created_and_fetched() -> None:
    tenant = parse_tenant(REF_TENANT_CREATED)
    assert tenant.domain == "test01.tel4vn.com"
    assert tenant.port == "50061"
    assert tenant.user is not None
    assert tenant.user.enabled is True
    assert tenant.user.username == "admin"
    assert "abcabc123321" not in repr(tenant)
    bare = parse_tenant({k: v for k, v in REF_TENANT_CREATED["data"].items() if k != "user"})  # type: ignore[union-attr]
    assert bare.user is None
    assert bare.wss == "wss://pbx01.tel4vn.com"


def test_extension_created_and_fetched() -> None:
    created = parse_extension({"created": True, "data": {"enabled": "true", "ext": "104", "pwd": "123Abc!@#"}})
    fetched = parse_extension({"ext": "104", "pwd": "123Abc!@#", "enabled": "true"})
    assert created == fetched
    assert created.enabled is True
    assert "123Abc" not in repr(created)


# Property: whatever the PBX sends, a parser returns or raises PbxError, nothing else.
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
KEYS = sorted(
    set(REF_AGENT_1) | set(REF_CDR_ANSWERED) | {"data", "total", "count", "status", "scroll_id", "token", "expired"}
)
ROW = st.dictionaries(st.sampled_from(KEYS), JSON, max_size=8)
BODY = JSON | st.fixed_dictionaries(
    {"data": st.lists(ROW, max_size=4) | JSON}, optional={"total": JSON, "scroll_id": JSON}
)
PARSERS = [
    parse_agents,
    parse_calls,
    parse_call_ids,
    parse_events,
    parse_status,
    parse_cdr_page,
    parse_cdr_scroll,
    parse_cdr,
    parse_token,
    parse_account,
    parse_action,
    parse_click2call,
    parse_tenant,
    parse_extension,
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(PARSERS), BODY)
def test_any_body_parses_or_raises_pbx_error(parse: Any, body: object) -> None:
    try:
        parse(body)
    except PbxError as error:
        assert error.code == "BAD_RESPONSE"


def test_every_parser_is_fuzzed() -> None:
    public = {name for name in dir(models) if name.startswith("parse_") and name != "parse_flag"}
    assert public == {parse.__name__ for parse in PARSERS}


def test_examples_survive_a_json_round_trip() -> None:
    # The client feeds parsers what orjson decodes; the examples must be plain JSON.
    body = json.loads(json.dumps({"data": [REF_CDR_BUSY]}))
    assert parse_cdr_scroll(body).records[0].id.endswith("225934")
