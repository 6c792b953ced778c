from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from wallboard.pbx.client import PbxClient
from wallboard.pbx.errors import PbxError

API_KEY = "test-api-key-123"
SECRET = "test-secret-token"
T0 = 1_700_000_000.0

Handler = Callable[[httpx.Request], httpx.Response | None]


class FakePbx:
    """A MockTransport handler: issues tokens, checks bearers, answers routes."""

    def __init__(self, lifetime: float = 3600) -> None:
        self.now = T0
        self.lifetime = lifetime
        self.issued = 0
        self.valid: set[str] = set()
        self.routes: dict[tuple[str, str], Handler] = {}
        self.seen: list[httpx.Request] = []
        # Overrides the token answer while it returns a response.
        self.token_answer: Callable[[], httpx.Response | None] | None = None

    def clock(self) -> float:
        return self.now

    def route(self, method: str, path: str, answer: Handler | dict[str, Any]) -> None:
        if isinstance(answer, dict):
            body = answer
            self.routes[(method, path)] = lambda _request: httpx.Response(200, json=body)
        else:
            self.routes[(method, path)] = answer

    def revoke_all(self) -> None:
        self.valid.clear()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        await asyncio.sleep(0)  # let concurrent requests interleave as on a real socket
        if request.url.path == "/v1/auth/token":
            forced = self.token_answer() if self.token_answer is not None else None
            if forced is not None:
                return forced
            if json.loads(request.content) != {"api_key": API_KEY}:
                return httpx.Response(401, json={"status": "fail", "error": "UNAUTHORIZED"})
            self.issued += 1
            token = f"token-{self.issued}"
            self.valid.add(token)
            data = {"expired": int(self.now + self.lifetime), "token": token, "user_id": "u-1"}
            return httpx.Response(200, json={"data": data})
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(404, text="404 page not found")
        needs_bearer = not request.url.path.startswith(("/v1/auth", "/v1/tenant"))
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if needs_bearer and bearer not in self.valid:
            return httpx.Response(
                401,
                json={
                    "status": "fail",
                    "error": "UNAUTHORIZED",
                    "message": "invalid or expired token",
                },
            )
        response = answer(request)
        assert response is not None
        return response

    def paths(self) -> list[str]:
        return [r.url.path for r in self.seen]


AGENTS = {"data": [{"extension": "1001", "agent_name": "A", "call_state": None}], "total": 1}


@pytest.fixture
def pbx() -> FakePbx:
    fake = FakePbx()
    fake.route("GET", "/v1/monitor/agent", AGENTS)
    return fake


@pytest.fixture
async def client(pbx: FakePbx) -> AsyncIterator[PbxClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(pbx)) as http:
        yield PbxClient(
            "http://pbx.test/",
            API_KEY,
            http=http,
            timeout=2.5,
            secret_token=SECRET,
            clock=pbx.clock,
        )


# -- token lifecycle --------------------------------------------------------------


async def test_token_is_fetched_lazily_once_and_sent_as_bearer(client: PbxClient, pbx: FakePbx) -> None:
    assert pbx.seen == []
    await client.monitor_agents()
    await client.monitor_agents()
    assert pbx.paths() == ["/v1/auth/token", "/v1/monitor/agent", "/v1/monitor/agent"]
    assert pbx.seen[1].headers["authorization"] == "Bearer token-1"
    assert client.requests == {"/v1/auth/token": 1, "/v1/monitor/agent": 2}


async def test_token_is_refreshed_a_minute_before_expiry(client: PbxClient, pbx: FakePbx) -> None:
    first = await client.get_token()
    assert first.expired == int(T0 + 3600)
    pbx.now = T0 + 3600 - 61
    assert (await client.get_token()).token == "token-1"
    pbx.now = T0 + 3600 - 59
    assert (await client.get_token()).token == "token-2"
    assert pbx.issued == 2


async def test_short_lived_token_is_refreshed_at_a_tenth_of_its_life(pbx: FakePbx) -> None:
    pbx.lifetime = 10
    async with httpx.AsyncClient(transport=httpx.MockTransport(pbx)) as http:
        client = PbxClient("http://pbx.test", API_KEY, http=http, clock=pbx.clock)
        await client.get_token()
        pbx.now = T0 + 8.9
        await client.get_token()
        assert pbx.issued == 1
        pbx.now = T0 + 9.1
        await client.get_token()
        assert pbx.issued == 2


async def test_a_401_refreshes_once_and_retries_once(client: PbxClient, pbx: FakePbx) -> None:
    await client.monitor_agents()
    pbx.revoke_all()
    agents = await client.monitor_agents()
    assert agents[0].ext == "1001"
    assert pbx.paths() == [
        "/v1/auth/token",
        "/v1/monitor/agent",
        "/v1/monitor/agent",
        "/v1/auth/token",
        "/v1/monitor/agent",
    ]
    assert pbx.seen[-1].headers["authorization"] == "Bearer token-2"


async def test_a_second_401_is_not_retried_again(client: PbxClient, pbx: FakePbx) -> None:
    pbx.route(
        "GET",
        "/v1/call",
        lambda _r: httpx.Response(401, json={"status": "fail", "error": "UNAUTHORIZED"}),
    )
    with pytest.raises(PbxError) as caught:
        await client.list_calls()
    assert caught.value.code == "UNAUTHORIZED"
    assert caught.value.status == 401
    assert client.requests == {"/v1/auth/token": 2, "/v1/call": 2}


async def test_twenty_concurrent_requests_share_one_token_fetch(client: PbxClient, pbx: FakePbx) -> None:
    await asyncio.gather(*(client.monitor_agents() for _ in range(20)))
    assert pbx.issued == 1


async def test_twenty_concurrent_401s_cause_exactly_one_refresh(client: PbxClient, pbx: FakePbx) -> None:
    await client.monitor_agents()
    pbx.revoke_all()
    results = await asyncio.gather(*(client.monitor_agents() for _ in range(20)))
    assert all(agents[0].ext == "1001" for agents in results)
    assert pbx.issued == 2
    assert client.token_fetches == 2
    # Each request was sent at most twice: the one that failed and its retry.
    assert client.requests["/v1/monitor/agent"] == 1 + 20 + 20


async def test_a_failed_refresh_is_shared_by_the_waiters(client: PbxClient, pbx: FakePbx) -> None:
    pbx.token_answer = lambda: httpx.Response(503, text="<html>down</html>")
    outcomes = await asyncio.gather(*(client.monitor_agents() for _ in range(20)), return_exceptions=True)
    assert all(isinstance(o, PbxError) and o.code == "HTTP_503" for o in outcomes)
    assert client.requests == {"/v1/auth/token": 1}
    # The failure is not remembered beyond those waiters: the next call tries again.
    pbx.token_answer = None
    assert (await client.monitor_agents())[0].ext == "1001"


async def test_a_failed_early_refresh_keeps_the_still_valid_token(client: PbxClient, pbx: FakePbx) -> None:
    await client.monitor_agents()
    pbx.now = T0 + 3600 - 30
    pbx.token_answer = lambda: httpx.Response(500, json={"error": "boom"})
    assert (await client.monitor_agents())[0].ext == "1001"
    assert pbx.seen[-1].headers["authorization"] == "Bearer token-1"
    pbx.now = T0 + 3600
    with pytest.raises(PbxError) as caught:
        await client.monitor_agents()
    assert caught.value.code == "HTTP_500"


async def test_a_wrong_api_key_is_unauthorized_without_loops(pbx: FakePbx) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(pbx)) as http:
        client = PbxClient("http://pbx.test", "wrong-key-456", http=http, clock=pbx.clock)
        with pytest.raises(PbxError) as caught:
            await client.monitor_agents()
    assert caught.value.code == "UNAUTHORIZED"
    assert "wrong-key-456" not in str(caught.value)
    assert client.requests == {"/v1/auth/token": 1}


async def test_login_sends_no_bearer_and_a_refusal_is_not_a_token_problem(client: PbxClient, pbx: FakePbx) -> None:
    def login(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body == {"username": "supervisor@sim", "password": "supervisor"}:
            data = {"username": "supervisor@sim", "user_enabled": "true", "level": "admin"}
            return httpx.Response(200, json={"data": data})
        return httpx.Response(401, json={"status": "fail", "error": "INVALID_CREDENTIALS"})

    pbx.route("POST", "/v1/auth", login)
    account = await client.login("supervisor@sim", "supervisor")
    assert (account.username, account.level, account.user_enabled) == (
        "supervisor@sim",
        "admin",
        True,
    )
    assert "authorization" not in pbx.seen[0].headers
    with pytest.raises(PbxError) as caught:
        await client.login("supervisor@sim", "wrong")
    assert caught.value.code == "INVALID_CREDENTIALS"
    assert caught.value.message == "The PBX refused that username or password."
    assert pbx.issued == 0


# -- failures -----------------------------------------------------------------------


def raising(error: Exception) -> Handler:
    def answer(request: httpx.Request) -> httpx.Response:
        raise error

    return answer


@pytest.mark.parametrize(
    ("answer", "code", "status"),
    [
        (raising(httpx.ReadTimeout("slow")), "TIMEOUT", None),
        (raising(httpx.ConnectTimeout("slow")), "TIMEOUT", None),
        (raising(httpx.ConnectError("refused")), "UNREACHABLE", None),
        (raising(httpx.RemoteProtocolError("half a body")), "UNREACHABLE", None),
        (lambda _r: httpx.Response(200, text="<html>oops</html>"), "BAD_RESPONSE", 200),
        (lambda _r: httpx.Response(200, text='{"data": [{"extension": "10'), "BAD_RESPONSE", 200),
        (lambda _r: httpx.Response(200, json=[1, 2]), "BAD_RESPONSE", None),
        (lambda _r: httpx.Response(200, json={"data": "nope"}), "BAD_RESPONSE", None),
        (lambda _r: httpx.Response(500, text="Internal Server Error"), "HTTP_500", 500),
        (lambda _r: httpx.Response(502, json={"error": "bad gateway"}), "HTTP_502", 502),
        (lambda _r: httpx.Response(404, text="404 page not found"), "HTTP_404", 404),
        (
            lambda _r: httpx.Response(200, json={"status": "fail", "error": "USER_BUSY"}),
            "USER_BUSY",
            200,
        ),
        (lambda _r: httpx.Response(200, json={"status": "fail"}), "FAILED", 200),
    ],
)
async def test_failures_become_pbx_errors(
    client: PbxClient, pbx: FakePbx, answer: Handler, code: str, status: int | None
) -> None:
    pbx.route("GET", "/v1/call", answer)
    with pytest.raises(PbxError) as caught:
        await client.list_calls()
    assert caught.value.code == code
    assert caught.value.status == status
    assert "\n" not in str(caught.value)
    assert caught.value.message


async def test_the_configured_timeout_is_used(client: PbxClient, pbx: FakePbx) -> None:
    await client.monitor_agents()
    timeouts = pbx.seen[-1].extensions["timeout"]
    assert timeouts == {"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}


async def test_sentence_errors_become_codes_and_keep_the_sentence(client: PbxClient, pbx: FakePbx) -> None:
    pbx.route(
        "GET",
        "/v1/report/call_status",
        lambda _r: httpx.Response(400, json={"error": "date range must be in 24 hours"}),
    )
    with pytest.raises(PbxError) as caught:
        await client.call_status("2021-06-01 00:00:00", "2021-06-01 10:00:00")
    assert caught.value.code == "DATE_RANGE_MUST_BE_IN_24_HOURS"
    assert caught.value.message == "date range must be in 24 hours"
    assert caught.value.status == 400


async def test_error_messages_never_carry_our_secrets(client: PbxClient, pbx: FakePbx) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        bearer = request.headers["authorization"].removeprefix("Bearer ")
        message = f"token {bearer} for key {API_KEY} is odd"
        return httpx.Response(400, json={"status": "fail", "error": "ODD", "message": message})

    pbx.route("GET", "/v1/call", echo)
    with pytest.raises(PbxError) as caught:
        await client.list_calls()
    text = str(caught.value) + repr(caught.value)
    assert "token-1" not in text
    assert API_KEY not in text
    assert "[redacted]" in text


# -- reports and date rules ------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2021-06-01 23:59:59", "2021-06-01 00:00:00"),
        ("2021-06-01 00:00:00", "2021-06-02 00:00:01"),
        ("2021-06-01", "2021-06-02"),
    ],
)
async def test_bad_date_ranges_are_refused_before_sending(
    client: PbxClient, pbx: FakePbx, start: str, end: str
) -> None:
    for call in (client.call_status, client.call_ids):
        with pytest.raises(PbxError) as caught:
            await call(start, end)
        assert caught.value.code == "BAD_DATE_RANGE"
    assert pbx.seen == []


async def test_call_status_sends_local_dates(client: PbxClient, pbx: FakePbx) -> None:
    pbx.route(
        "GET",
        "/v1/report/call_status",
        {
            "data": [{"count": 3, "status": "ANSWERED"}, {"count": "1", "status": "BUSY"}],
            "total": 4,
        },
    )
    report = await client.call_status("2024-03-11 00:00:00", "2024-03-11 00:00:01")
    assert report.counts == {"ANSWERED": 3, "BUSY": 1}
    assert report.total == 4
    params = pbx.seen[-1].url.params
    assert params["start_date"] == "2024-03-11 00:00:00"
    assert params["end_date"] == "2024-03-11 00:00:01"


async def test_call_ids(client: PbxClient, pbx: FakePbx) -> None:
    pbx.route("GET", "/v1/report/call_id", {"data": [{"call_id": "c1 ", "sip_call_id": "s1"}]})
    records = await client.call_ids("2024-03-11 00:00:00", "2024-03-11 10:00:00")
    assert [(r.call_id, r.sip_call_id) for r in records] == [("c1", "s1")]


async def test_list_calls_and_skipped_rows_are_counted(client: PbxClient, pbx: FakePbx) -> None:
    row = {"call_id": "c1", "direction": "inbound", "state": "CS_ROUTING", "source": "0899"}
    pbx.route("GET", "/v1/call", {"data": [row, {"state": "no id"}], "total": 2})
    calls = await client.list_calls()
    assert [(c.call_id, c.state) for c in calls] == [("c1", "CS_ROUTING")]
    assert client.skipped_rows == {"/v1/call": 1}


# -- event hooks ---------------------------------------------------------------------


async def test_event_hooks(client: PbxClient, pbx: FakePbx) -> None:
    hook = {"event_domain_uuid": "e-1", "event_name": "cdr", "callback_url": "http://cb/x"}
    pbx.route("GET", "/v1/event", {"data": [hook]})
    pbx.route("POST", "/v1/event", {"created": True})
    pbx.route("DELETE", "/v1/event/e-1", {"deleted": True})
    assert [h.event_name for h in await client.list_events()] == ["cdr"]
    assert await client.create_event("ringing", "http://cb/x", "cb-secret") is True
    assert json.loads(pbx.seen[-1].content) == {
        "callback_url": "http://cb/x",
        "callback_apikey": "cb-secret",
        "event": "ringing",
    }
    assert await client.delete_event("e-1") is True
    assert client.requests["/v1/event/{id}"] == 1


async def test_unknown_event_is_the_pbx_code(client: PbxClient, pbx: FakePbx) -> None:
    pbx.route(
        "POST",
        "/v1/event",
        lambda _r: httpx.Response(400, json={"status": "fail", "error": "INVALID_EVENT"}),
    )
    with pytest.raises(PbxError) as caught:
        await client.create_event("create", "http://cb/x", "k")
    assert caught.value.code == "INVALID_EVENT"


# -- CDRs ----------------------------------------------------------------------------


def cdr(n: int) -> dict[str, Any]:
    return {
        "id": f"cdr-{n} ",
        "direction": 1,
        "duration": str(n),
        "time_answered": "",
        "status": "ANSWERED",
    }


async def test_iter_cdrs_scrolls_to_the_end(client: PbxClient, pbx: FakePbx) -> None:
    batches = {None: [cdr(1), cdr(2)], "s-1": [cdr(3)], "s-2": []}
    following = {None: "s-1", "s-1": "s-2", "s-2": "s-3"}

    def scroll(request: httpx.Request) -> httpx.Response:
        sid = request.url.params.get("scroll_id")
        return httpx.Response(200, json={"data": batches[sid], "scroll_id": following[sid]})

    pbx.route("GET", "/v1/cdr", scroll)
    records = [r async for r in client.iter_cdrs(extension="1001", start_date="2024-03-11")]
    assert [(r.id, r.direction, r.duration) for r in records] == [
        ("cdr-1", "inbound", 1),
        ("cdr-2", "inbound", 2),
        ("cdr-3", "inbound", 3),
    ]
    first, second, third = (r.url.params for r in pbx.seen[1:])
    assert dict(first) == {"extension": "1001", "start_date": "2024-03-11"}
    assert dict(second) == {"scroll_id": "s-1"}
    assert dict(third) == {"scroll_id": "s-2"}


async def test_iter_cdrs_refuses_pagination_parameters(client: PbxClient) -> None:
    with pytest.raises(ValueError):
        [r async for r in client.iter_cdrs(page=2)]


async def test_iter_cdr_pages_walks_every_page(client: PbxClient, pbx: FakePbx) -> None:
    all_rows = [cdr(n) for n in range(1, 6)]

    def page(request: httpx.Request) -> httpx.Response:
        number, limit = int(request.url.params["page"]), int(request.url.params["limit"])
        rows = all_rows[(number - 1) * limit : number * limit]
        return httpx.Response(200, json={"data": rows, "limit": limit, "page": number, "total": 5})

    pbx.route("GET", "/v1/cdr", page)
    ids = [r.id async for r in client.iter_cdr_pages(limit=2, status="ANSWERED")]
    assert ids == [f"cdr-{n}" for n in range(1, 6)]
    assert [r.url.params["page"] for r in pbx.seen[1:]] == ["1", "2", "3"]
    assert pbx.seen[-1].url.params["status"] == "ANSWERED"


async def test_cdr_page_and_get_cdr(client: PbxClient, pbx: FakePbx) -> None:
    pbx.route("GET", "/v1/cdr", {"data": [cdr(1)], "limit": 1, "page": 3, "total": 9})
    pbx.route("GET", "/v1/cdr/sip id/1", lambda _r: httpx.Response(200, json=cdr(7)))
    page = await client.cdr_page(3, 1, direction="inbound")
    assert (page.page, page.limit, page.total, page.records[0].id) == (3, 1, 9, "cdr-1")
    got = await client.get_cdr("sip id/1 ")
    assert got.id == "cdr-7"
    assert pbx.seen[-1].url.raw_path == b"/v1/cdr/sip%20id%2F1"
    assert client.requests["/v1/cdr/{id}"] == 1


# -- click-to-call and call actions -----------------------------------------------------


async def test_click2call_async_and_sync(client: PbxClient, pbx: FakePbx) -> None:
    answer = {"status": "success", "call_id": "c-9"}
    pbx.route("GET", "/v1/click2call/async", answer)
    pbx.route("GET", "/v1/click2call", answer)
    result = await client.click2call("1001", "0899098899", auto_answer=True, hotline=None)
    assert (result.call_id, result.status) == ("c-9", "success")
    assert dict(pbx.seen[-1].url.params) == {
        "ext": "1001",
        "phone": "0899098899",
        "auto_answer": "true",
    }
    await client.click2call("1001", "0899098899", wait=True)
    assert pbx.seen[-1].url.path == "/v1/click2call"
    assert pbx.seen[-1].extensions["timeout"]["read"] >= 60


async def test_click2call_failure_keeps_the_pbx_message(client: PbxClient, pbx: FakePbx) -> None:
    message = "User not registered extension with Softphone or IP Phone"
    pbx.route(
        "GET",
        "/v1/click2call/async",
        lambda _r: httpx.Response(200, json={"status": "fail", "message": message, "error": "USER_NOT_REGISTERED"}),
    )
    with pytest.raises(PbxError) as caught:
        await client.click2call("1001", "0899")
    assert (caught.value.code, caught.value.message) == ("USER_NOT_REGISTERED", message)


@pytest.mark.parametrize("action", ["listen", "whisper", "barge", "transfer"])
async def test_call_actions(client: PbxClient, pbx: FakePbx, action: str) -> None:
    pbx.route(
        "POST",
        f"/v1/call/c-1/{action}",
        lambda r: httpx.Response(
            200, json={"status": "success", "call_id": "c-1", "ext": json.loads(r.content)["ext"]}
        ),
    )
    result = await client.call_action("c-1", action, "999")  # type: ignore[arg-type]
    assert (result.call_id, result.ext) == ("c-1", "999")
    assert client.requests[f"/v1/call/{{call_id}}/{action}"] == 1


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (200, {"status": "fail", "error": "USER_NOT_REGISTERED"}, "USER_NOT_REGISTERED"),
        (400, {"status": "fail", "error": "USER_BUSY"}, "USER_BUSY"),
        (404, {"status": "fail", "error": "CALL_NOT_FOUND"}, "CALL_NOT_FOUND"),
    ],
)
async def test_call_action_failures(
    client: PbxClient, pbx: FakePbx, status: int, body: dict[str, str], code: str
) -> None:
    pbx.route("POST", "/v1/call/c-1/listen", lambda _r: httpx.Response(status, json=body))
    with pytest.raises(PbxError) as caught:
        await client.call_action("c-1", "listen", "999")
    assert caught.value.code == code
    assert caught.value.message and caught.value.message != code


async def test_unknown_action_is_refused_locally(client: PbxClient, pbx: FakePbx) -> None:
    with pytest.raises(ValueError):
        await client.call_action("c-1", "hangup", "999")  # type: ignore[arg-type]
    assert pbx.seen == []


# -- tenants ----------------------------------------------------------------------------


async def test_tenant_endpoints_use_the_secret_token(client: PbxClient, pbx: FakePbx) -> None:
    tenant = {"domain": "t1.tel4vn.com", "tenant_url": "http://pbx/v1/tenant/t1", "port": 5060}
    ext = {"ext": "101", "pwd": "p", "enabled": "true"}
    pbx.route("POST", "/v1/tenant", {"created": True, "data": tenant})
    pbx.route("GET", "/v1/tenant/t1", tenant)
    pbx.route("PUT", "/v1/tenant/t1", {"message": "update successfully"})
    pbx.route("POST", "/v1/tenant/t1/extension", {"created": True, "data": ext})
    pbx.route("GET", "/v1/tenant/t1/extension/extension/101", ext)
    assert (await client.create_tenant("t1")).domain == "t1.tel4vn.com"
    assert (await client.get_tenant("t1")).port == "5060"
    assert await client.update_tenant("t1", enable=False) is True
    assert json.loads(pbx.seen[2].content) == {"enable": False}
    assert (await client.create_extension("t1", "101", "p")).ext == "101"
    assert (await client.get_extension("t1", "101")).enabled is True
    assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in pbx.seen)
    assert pbx.issued == 0


async def test_tenant_calls_need_a_secret_token(pbx: FakePbx) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(pbx)) as http:
        client = PbxClient("http://pbx.test", API_KEY, http=http)
        with pytest.raises(PbxError) as caught:
            await client.get_tenant("t1")
    assert caught.value.code == "NO_SECRET_TOKEN"
    assert pbx.seen == []


async def test_a_dripping_pbx_is_cut_off_at_the_timeout(pbx: FakePbx) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/token":
            return await pbx(request)
        await asyncio.sleep(5)
        return httpx.Response(200, json=AGENTS)

    async with httpx.AsyncClient(transport=httpx.MockTransport(slow)) as http:
        client = PbxClient("http://pbx.test", API_KEY, http=http, timeout=0.05, clock=pbx.clock)
        started = asyncio.get_running_loop().time()
        with pytest.raises(PbxError) as caught:
            await client.monitor_agents()
    assert caught.value.code == "TIMEOUT"
    assert asyncio.get_running_loop().time() - started < 2


async def test_a_401_after_a_failed_early_refresh_fetches_again_at_once(client: PbxClient, pbx: FakePbx) -> None:
    await client.monitor_agents()
    pbx.now = T0 + 3600 - 30
    pbx.revoke_all()
    failures = [httpx.Response(500, json={"error": "blip"})]
    pbx.token_answer = lambda: failures.pop() if failures else None
    # The early refresh fails, the old token is used and refused: a new fetch, not the old error.
    assert (await client.monitor_agents())[0].ext == "1001"
    assert pbx.seen[-1].headers["authorization"] == "Bearer token-2"
