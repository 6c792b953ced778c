"""The webhook receiver's answers (SPEC section 7), the event parser, registration
against the simulator, and the kept secret."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import orjson
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from tests.factories import clock, web_parts, webhook_body
from wallboard.pbx.client import PbxClient
from wallboard.pbx.events import BadEvent, CallEvent, parse_event
from wallboard.registration import callback_url, load_secret, register, unregister
from wallboard.settings import defaults
from wallboard.sim.app import SimOptions, create_sim_app
from wallboard.web.context import PartsMiddleware
from wallboard.web.hooks import MAX_BODY, receive

SECRET = "s3cret-path"


class Receiver:
    """A minimal app around the real route, standing in for the engine (what it was submitted)
    and the metrics (what was counted)."""

    def __init__(self, *, fail: bool = False) -> None:
        self.applied: list[CallEvent] = []
        self.counted: list[str] = []
        self.fail = fail
        self.webhook_secret = SECRET
        self.time = clock()
        parts = web_parts(defaults(), engine=self, metrics=Counted(self.counted.append))
        self.app = Starlette(routes=[Route("/hooks/pbx/{secret}", receive, methods=["POST"])],
                             middleware=[Middleware(PartsMiddleware, parts=parts)])

    def submit(self, event: CallEvent) -> None:
        if self.fail:
            raise KeyError("boom")
        self.applied.append(event)

    def count_webhook(self, result: str) -> None:
        pass  # the engine's own tally (sources.webhooks); the metrics' is what tests read


class Counted:
    def __init__(self, count: Callable[[str], None]) -> None:
        self.count_webhook = count


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
async def client(receiver: Receiver) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver.app),
                                 base_url="http://wb") as c:
        yield c


async def post(client: httpx.AsyncClient, body: object, secret: str = SECRET) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post(f"/hooks/pbx/{secret}", content=content,
                             headers={"content-type": "application/json"})


async def test_good_event_is_200_and_applied(client: httpx.AsyncClient, receiver: Receiver) -> None:
    answer = await post(client, webhook_body("ringing", "c-1"))
    assert answer.status_code == 200 and answer.json() == {"ok": True}
    assert [e.call_id for e in receiver.applied] == ["c-1"]
    assert receiver.applied[0].to_number == "1001" and receiver.applied[0].direction == "inbound"
    assert receiver.counted == ["accepted"]


async def test_wrong_secret_is_404_and_nothing_applied(client: httpx.AsyncClient, receiver: Receiver) -> None:
    for secret in ("wrong", SECRET + "x", SECRET[:-1]):
        answer = await post(client, webhook_body(), secret=secret)
        assert answer.status_code == 404
    assert receiver.applied == [] and receiver.counted == ["not_found"] * 3


async def test_body_over_64_kib_is_413(client: httpx.AsyncClient, receiver: Receiver) -> None:
    big = orjson.dumps(webhook_body(padding="x" * MAX_BODY))
    answer = await post(client, big)
    assert answer.status_code == 413 and "64 KiB" in answer.json()["error"]
    assert receiver.applied == []


async def test_chunked_body_over_64_kib_without_content_length_is_413(
        client: httpx.AsyncClient, receiver: Receiver) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"state": "ringing", "call_id": "c-1", "pad": "'
        for _ in range(100):
            sent += 1
            yield b"x" * 4096
        yield b'"}'

    request = client.build_request("POST", f"/hooks/pbx/{SECRET}", content=chunks())
    assert "content-length" not in request.headers
    assert request.headers["transfer-encoding"] == "chunked"
    answer = await client.send(request)
    assert answer.status_code == 413
    assert receiver.applied == []


async def test_exactly_64_kib_is_accepted(client: httpx.AsyncClient, receiver: Receiver) -> None:
    body = orjson.dumps(webhook_body(pad=""))
    body = orjson.dumps(webhook_body(pad="x" * (MAX_BODY - len(body))))
    assert len(body) == MAX_BODY
    assert (await post(client, body)).status_code == 200


@pytest.mark.parametrize(("body", "names"), [
    (b"not json", "not JSON"),
    (b"", "not JSON"),
    (b"[1, 2]", "JSON object"),
    (b'"ringing"', "JSON object"),
    (b"null", "JSON object"),
    (orjson.dumps({"call_id": "c-1"}), "'state'"),
    (orjson.dumps({"state": "ringing"}), "'call_id'"),
    (orjson.dumps({"state": "ringing", "call_id": ""}), "'call_id'"),
    (orjson.dumps({"state": "ringing", "call_id": 42}), "'call_id'"),
    (orjson.dumps({"state": None, "call_id": "c-1"}), "'state'"),
    (orjson.dumps(webhook_body(from_number={"nested": 1})), "'from_number'"),
    (orjson.dumps(webhook_body(duration="ten")), "'duration'"),
    (orjson.dumps(webhook_body(call_id="x" * 201)), "too long"),
])
async def test_malformed_is_400_naming_the_problem(client: httpx.AsyncClient, receiver: Receiver,
                                                   body: bytes, names: str) -> None:
    answer = await post(client, body)
    assert answer.status_code == 400, answer.text
    assert names in answer.json()["error"]
    assert receiver.applied == [] and receiver.counted == ["rejected"]


async def test_unknown_state_is_422(client: httpx.AsyncClient, receiver: Receiver) -> None:
    answer = await post(client, webhook_body("missed"))
    assert answer.status_code == 422
    assert "missed" in answer.json()["error"] and "ringing" in answer.json()["error"]
    assert receiver.applied == []


async def test_a_state_that_refuses_the_event_is_422_not_500() -> None:
    receiver = Receiver(fail=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=receiver.app),
                                 base_url="http://wb") as client:
        answer = await post(client, webhook_body())
    assert answer.status_code == 422 and receiver.counted == ["failed"]


async def test_only_post_is_allowed(client: httpx.AsyncClient) -> None:
    assert (await client.get(f"/hooks/pbx/{SECRET}")).status_code == 405


# ---- the parser -----------------------------------------------------------------------

def test_parse_event_reads_the_vendor_fields_and_pbx_local_time() -> None:
    received = 1_764_288_000_000  # 07:00 local
    body = webhook_body("hangup", " c-9 ", time="2025-11-28 06:59:58", duration="12", billsec=7,
                        direction="3", status="answered")
    event = parse_event(orjson.dumps(body), clock(), received)
    assert event.call_id == "c-9" and event.state == "hangup"
    assert event.at == received - 2000 and event.received == received
    assert event.duration == 12 and event.billsec == 7
    assert event.direction == "outbound" and event.status == "ANSWERED"


def test_parse_event_time_from_the_future_is_our_clock() -> None:
    received = 1_764_288_000_000
    body = webhook_body(time="2025-11-28 08:00:00")  # an hour ahead: a wrong PBX clock
    assert parse_event(orjson.dumps(body), clock(), received).at == received


def test_parse_event_state_is_case_insensitive_and_trimmed() -> None:
    event = parse_event(orjson.dumps(webhook_body(" Answered ")), clock(), 1)
    assert event.state == "answered"


def test_bad_event_carries_its_status() -> None:
    with pytest.raises(BadEvent) as info:
        parse_event(b"{}", clock(), 1)
    assert info.value.status == 400


# ---- registration against the simulator ---------------------------------------------------

@pytest.fixture
async def sim_pbx() -> AsyncIterator[PbxClient]:
    app = create_sim_app(SimOptions(agents=2, seed=3, rate=0, prefill=False))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        yield PbxClient("http://sim", "sim-api-key", http=http)


EVENTS = ["ringing", "answered", "hangup", "cdr"]


async def test_registration_keeps_exactly_one_per_event_after_restarts(sim_pbx: PbxClient) -> None:
    url = callback_url("http://127.0.0.1:8000/", SECRET)
    assert url == f"http://127.0.0.1:8000/hooks/pbx/{SECRET}"
    assert await register(sim_pbx, url, SECRET, EVENTS) == dict.fromkeys(EVENTS, "created")
    for _ in range(4):  # four restarts
        assert await register(sim_pbx, url, SECRET, EVENTS) == dict.fromkeys(EVENTS, "kept")
    hooks = [h for h in await sim_pbx.list_events() if h.callback_url == url]
    assert sorted(h.event_name for h in hooks) == sorted(EVENTS)
    assert {h.callback_apikey for h in hooks} == {SECRET}


async def test_registration_removes_duplicates_and_refreshes_a_stale_key(sim_pbx: PbxClient) -> None:
    url = callback_url("http://wb.example", SECRET)
    other = callback_url("http://someone.else", "theirs")
    await sim_pbx.create_event("ringing", url, SECRET)
    await sim_pbx.create_event("ringing", url, SECRET)  # a duplicate left by an old bug
    await sim_pbx.create_event("hangup", url, "old-key")  # a stale key
    await sim_pbx.create_event("cdr", url, SECRET)  # an event no longer configured
    await sim_pbx.create_event("ringing", other, "theirs")  # not ours: left alone
    wanted = ["ringing", "answered", "hangup"]
    done = await register(sim_pbx, url, SECRET, wanted)
    assert done == {"ringing": "kept", "answered": "created", "hangup": "replaced"}
    hooks = await sim_pbx.list_events()
    mine = sorted((h.event_name, h.callback_apikey) for h in hooks if h.callback_url == url)
    assert mine == sorted((e, SECRET) for e in wanted)
    assert [h.event_name for h in hooks if h.callback_url == other] == ["ringing"]
    assert await unregister(sim_pbx, url) == 3
    assert [h.callback_url for h in await sim_pbx.list_events()] == [other]


# ---- the secret ----------------------------------------------------------------------

def test_load_secret_generates_once_keeps_it_with_mode_0600(tmp_path: Path) -> None:
    state_dir = tmp_path / "var"
    first = load_secret("", state_dir)
    assert len(first) >= 24
    path = state_dir / "webhook_secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret("", state_dir) == first  # a restart keeps the callback URL
    assert load_secret("configured", state_dir) == "configured"
    assert path.read_text() == first
