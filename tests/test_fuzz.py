"""Bad input, generated: webhook bodies against the real receiver route of the real
app, and PBX answers (as bytes, through the client) against every parser. Then a
flood of 10,000 webhooks over real HTTP, none lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from tests.factories import T0, Running, agent, event, webhook_body
from tests.servers import listener, port_of, serving
from wallboard.app import create_app
from wallboard.pbx.client import PbxClient
from wallboard.pbx.errors import PbxError
from wallboard.settings import defaults

SECRET = "fuzz-secret"
HOOK = f"/hooks/pbx/{SECRET}"
FIELDS = ["call_id", "sip_call_id", "domain", "direction", "from_number", "to_number", "hotline",
          "state", "time", "duration", "billsec", "status", "extension", "time_started",
          "time_answered", "time_ended", "recording_url"]
STATES = ["ringing", "answered", "hangup", "cdr", "RINGING", " cdr ", "missed", "", "0"]


def make_app(tmp: Path, **server: Any) -> Starlette:
    return create_app(defaults().with_values(
        server={"public_url": "http://127.0.0.1:8000", **server},
        pbx={"base_url": "http://127.0.0.1:9", "api_key": "k"},
        webhook={"secret": SECRET, "register": False},
        auth={"mode": "none"},
        storage={"path": str(tmp / "wb.db")},
    ))


T = TypeVar("T")


def run(coro: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(coro())


# ---- generated webhook bodies --------------------------------------------------------

ODD_TEXT = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from([
    "\u202e0899", "\x00", "\ufeff1001", "１００１", "😀" * 20, "a\u0301", "\r\n", " ", "null", "1e999",
    "2025-11-28 07:00:00", "2025-02-30 25:61:61", "9999-12-31 23:59:59", "0000-00-00 00:00:00",
])
NUMBER_AS_TEXT = st.integers(-(2**63), 2**63).map(str) | st.floats().map(repr)
SCALAR = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | ODD_TEXT
          | NUMBER_AS_TEXT | st.integers(0, 70_000).map(lambda n: "x" * n))
JUNK = st.recursive(SCALAR, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
VENDORISH = st.fixed_dictionaries(
    {}, optional={**{f: JUNK for f in FIELDS}, "state": st.sampled_from(STATES) | JUNK,
                  "call_id": st.sampled_from(["c-1", "c-2", " c-3 ", "x" * 300]) | JUNK})
NEAR_GOOD = st.builds(lambda state, cid, extra: {**webhook_body(state, cid), **extra},
                      st.sampled_from(STATES), st.sampled_from(["c-1", "c-2", "fz-9"]),
                      st.dictionaries(st.sampled_from(FIELDS), JUNK, max_size=3))


def encode(value: object) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # ints beyond 64 bits: orjson refuses them, json-like text does not
        return repr(value).encode()


RAW = st.binary(max_size=200) | st.sampled_from([
    b"", b"{", b"{}", b"[]", b"null", b"true", b"1", b'"x"', b"\xff\xfe{}", b'{"state": "ringing", "call_id": "c',
    b'{"state": "ringing", "call_id": "c-1", "duration": 1e400}',
    b'{"state": "ringing", "call_id": "c-1", "duration": 123456789012345678901234567890}',
    b'{"state": "ringing", "call_id": "c-1", "state": "hangup"}',
    b'{"state": "ringing", "call_id": "\\ud800"}', b'{"state": "ringing", "call_id": "c\\u0000"}',
    b"\xef\xbb\xbf" + orjson.dumps(webhook_body()),
])
BODIES = RAW | (VENDORISH | NEAR_GOOD | JUNK).map(encode)


def board_of(wb: Running) -> bytes:
    """The state as screens see it, without the webhook counters a refusal moves."""
    snap = wb.live.snapshot(0)
    snap["sources"] = {k: v for k, v in snap["sources"].items() if k != "webhooks"}
    return orjson.dumps(snap)


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Starlette:
    app = make_app(tmp_path_factory.mktemp("fuzz"))
    wb = Running(app)
    wb.publish(wb.live.apply_agents([agent("1001"), agent("1002", "oncall", "c-2", direction="inbound",
                                                        peer="0899")], T0))
    wb.publish(wb.live.apply_event(event("ringing", "c-1", ext="1001", at=T0)))
    return app


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(body=BODIES, chunked=st.booleans())
def test_receiver_never_500_and_a_refusal_changes_nothing(fuzz_app: Starlette, body: bytes,
                                                          chunked: bool) -> None:
    wb = Running(fuzz_app)
    before = board_of(wb)

    async def chunks() -> Any:
        for i in range(0, len(body), 1000):
            yield body[i:i + 1000]

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=fuzz_app),
                                     base_url="http://wb") as client:
            return await client.post(HOOK, content=chunks() if chunked else body)

    answer = run(send)
    assert answer.status_code in (200, 400, 413, 422), (answer.status_code, body[:200])
    assert isinstance(answer.json(), dict)
    if answer.status_code != 200:
        assert answer.json()["error"]
        assert board_of(wb) == before
    if len(body) > 64 * 1024:
        assert answer.status_code == 413
    orjson.loads(board_of(wb))  # whatever was accepted, the state still encodes


# ---- generated PBX answers, through the client ----------------------------------------

PBX_JSON = st.recursive(
    SCALAR, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["data", "total", "status", "error", "message", "token", "expired", "scroll_id",
                         "extension", "call_id", "call_state", "agent_name", "created", "deleted",
                         "event_name", "callback_url", "id", "time_started"]) | st.text(max_size=6),
        inner, max_size=5), max_leaves=15)
PBX_BODY = st.binary(max_size=100) | PBX_JSON.map(encode)
CALLS: list[Callable[[PbxClient], Coroutine[Any, Any, Any]]] = [
    lambda c: c.monitor_agents(), lambda c: c.list_calls(), lambda c: c.list_events(),
    lambda c: c.call_status("2025-11-28 00:00:00", "2025-11-28 07:00:00"),
    lambda c: c.call_ids("2025-11-28 00:00:00", "2025-11-28 07:00:00"),
    lambda c: c.cdr_scroll(), lambda c: c.cdr_page(1, 10), lambda c: c.get_cdr("x"),
    lambda c: c.create_event("ringing", "http://x/hooks/pbx/s", "s"), lambda c: c.delete_event("u"),
    lambda c: c.call_action("c-1", "listen", "999"), lambda c: c.click2call("1001", "0899"),
    lambda c: c.get_token(),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call=st.sampled_from(range(len(CALLS))), body=PBX_BODY, status=st.sampled_from([200, 200, 400, 401, 500]))
def test_any_pbx_answer_gives_a_result_or_pbx_error(call: int, body: bytes, status: int) -> None:
    token = orjson.dumps({"token": "t", "expired": int(time.time()) + 3600})

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/token" and CALLS[call] is not CALLS[-1]:
            return httpx.Response(200, content=token)
        return httpx.Response(status, content=body)

    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
            try:
                await CALLS[call](PbxClient("http://pbx", "k", http=http, secret_token="s"))
            except PbxError as error:
                assert error.code and str(error)

    run(go)


# ---- a flood ------------------------------------------------------------------------

FLOOD_CALLS = 2_500  # four webhooks each: 10,000
WORKERS = 16


async def post_keepalive(port: int, bodies: list[bytes]) -> list[int]:
    """POST each body over one kept-alive HTTP/1.1 connection; the statuses in order.

    A bare client on purpose: httpx costs about three times what the server does per
    request, and on two cores it would measure itself, not the receiver.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    statuses = []
    try:
        for body in bodies:
            writer.write(f"POST {HOOK} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            length = next(int(h.split(":")[1]) for h in lines if h.lower().startswith("content-length:"))
            await reader.readexactly(length)
            statuses.append(int(lines[0].split()[1]))
    finally:
        writer.close()
        await writer.wait_closed()
    return statuses


async def test_a_flood_of_10000_webhooks_is_absorbed_without_losing_one(tmp_path: Path) -> None:
    sock = listener()
    port = port_of(sock)
    app = make_app(tmp_path, port=port)
    wb = Running(app)
    wb.publish(wb.live.apply_agents([agent(str(1000 + i)) for i in range(1, 51)], int(time.time() * 1000)))
    calls = [[orjson.dumps(webhook_body(state, f"flood-{n}", to_number=str(1001 + n % 50)))
              for state in ("ringing", "answered", "hangup", "cdr")] for n in range(FLOOD_CALLS)]
    # Each worker sends its calls' events in order; the workers run side by side.
    shares = [[body for call in calls[w::WORKERS] for body in call] for w in range(WORKERS)]
    async with serving(app, sock):
        start = time.perf_counter()
        answers = await asyncio.gather(*(post_keepalive(port, share) for share in shares))
        took = time.perf_counter() - start
    print(f"10,000 webhooks over HTTP in {took:.1f} s ({10_000 / took:.0f}/s)")
    assert sorted({s for share in answers for s in share}) == [200]
    assert sum(len(share) for share in answers) == 4 * FLOOD_CALLS
    hooks = wb.live.sources["webhooks"]
    assert hooks["received"] == 4 * FLOOD_CALLS and hooks["rejected"] == 0
    assert "wallboard_webhooks_total{result=\"accepted\"} 10000.0" in wb.metrics.render().decode()
    assert wb.live.calls == {}  # every call rang, was answered and hung up
    assert all(wb.live.phase(f"flood-{n}") == 4 for n in range(FLOOD_CALLS))
    assert {a["state"] for a in wb.live.agents.values()} == {"idle"}
