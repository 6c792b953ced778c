"""The PBX client against the simulator: every method, over ASGI and over real HTTP."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import uvicorn

from wallboard.pbx.client import PbxClient
from wallboard.pbx.errors import PbxError
from wallboard.pbx.times import PbxTime
from wallboard.sim.app import SimOptions, create_sim_app

# rate 0: no random calls and no login churn, so the test owns every agent.
OPTIONS: dict[str, Any] = {
    "agents": 6,
    "seed": 11,
    "rate": 0,
    "prefill": False,
    "logged_in_ratio": 1.0,
    "speed": 20.0,
}
TIME = PbxTime("Asia/Ho_Chi_Minh")


def sim_client(http: httpx.AsyncClient, base_url: str, **kw: Any) -> PbxClient:
    return PbxClient(base_url, "sim-api-key", http=http, secret_token="sim-secret-token", **kw)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    app = create_sim_app(SimOptions(**OPTIONS))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        yield client


@pytest.fixture
def pbx(http: httpx.AsyncClient) -> PbxClient:
    return sim_client(http, "http://sim")


async def control(http: httpx.AsyncClient, path: str, body: object = None) -> Any:
    response = await http.post(f"http://sim/_sim/{path}", json=body or {})
    assert response.status_code == 200, response.text
    return response.json()


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_login_and_token(pbx: PbxClient) -> None:
    supervisor = await pbx.login("supervisor@sim", "supervisor")
    viewer = await pbx.login("viewer@sim", "viewer")
    assert (supervisor.level, viewer.level) == ("admin", "user")
    assert supervisor.user_enabled is True
    with pytest.raises(PbxError) as caught:
        await pbx.login("supervisor@sim", "nope")
    assert caught.value.code == "INVALID_CREDENTIALS"
    token = await pbx.get_token()
    assert token.token
    assert token.expired > time.time() + 3000


async def test_a_wrong_api_key_is_refused(http: httpx.AsyncClient) -> None:
    pbx = PbxClient("http://sim", "wrong", http=http)
    with pytest.raises(PbxError) as caught:
        await pbx.monitor_agents()
    assert caught.value.code == "INVALID_CREDENTIALS"
    assert caught.value.status == 401


async def test_expired_tokens_are_refreshed_once_under_concurrency(http: httpx.AsyncClient, pbx: PbxClient) -> None:
    await pbx.monitor_agents()
    await control(http, "tokens/expire")
    results = await asyncio.gather(*(pbx.monitor_agents() for _ in range(20)))
    assert all(len(agents) == 7 for agents in results)
    assert pbx.requests["/v1/auth/token"] == 2


async def test_monitor_agents(pbx: PbxClient) -> None:
    agents = await pbx.monitor_agents()
    assert sorted(a.ext for a in agents) == ["1001", "1002", "1003", "1004", "1005", "1006", "999"]
    assert {a.call_state for a in agents} == {""}  # idle three ways in the sim: "", null, missing
    supervisor = next(a for a in agents if a.ext == "999")
    assert supervisor.name == "Supervisor"
    assert all(a.domain_name == "sim.tel4vn.com" for a in agents)


async def test_live_calls_actions_and_their_errors(http: httpx.AsyncClient, pbx: PbxClient) -> None:
    flow = await control(
        http,
        "calls",
        {"direction": "inbound", "exts": ["1001", "1002"], "answer_by": "1001", "ring_seconds": 0},
    )
    leg = next(x["call_id"] for x in flow["legs"] if x["ext"] == "1001")

    async def answered() -> bool:
        calls = await pbx.list_calls()
        return [(c.call_id, c.state) for c in calls] == [(leg, "CS_EXCHANGE_MEDIA")]

    await eventually(answered)
    (call,) = await pbx.list_calls()
    assert (call.direction, call.destination) == ("inbound", "1001")
    assert TIME.parse(call.created_time) is not None
    agent = next(a for a in await pbx.monitor_agents() if a.ext == "1001")
    assert (agent.call_state, agent.call_id) == ("ONCALL", leg)

    listened = await pbx.call_action(leg, "listen", "999")
    assert (listened.call_id, listened.ext) == (leg, "999")
    with pytest.raises(PbxError) as busy:
        await pbx.call_action(leg, "whisper", "999")
    assert busy.value.code == "USER_BUSY"
    await control(http, "agents/1003/logout")
    with pytest.raises(PbxError) as absent:
        await pbx.call_action(leg, "barge", "1003")
    assert absent.value.code == "USER_NOT_REGISTERED"
    assert absent.value.message
    with pytest.raises(PbxError) as gone:
        await pbx.call_action("no-such-call", "listen", "1004")
    assert (gone.value.code, gone.value.status) == ("CALL_NOT_FOUND", 404)
    moved = await pbx.call_action(leg, "transfer", "1004")
    assert moved.ext == "1004"


async def test_click2call_async(http: httpx.AsyncClient, pbx: PbxClient) -> None:
    started = await pbx.click2call("1005", "0899098899")
    assert started.status == "success"
    assert started.call_id
    calls = await pbx.list_calls()
    assert [(c.call_id, c.source, c.destination) for c in calls] == [(started.call_id, "1005", "0899098899")]
    with pytest.raises(PbxError) as busy:
        await pbx.click2call("1005", "0899098899")
    assert busy.value.code == "USER_BUSY"
    await control(http, "agents/1006/logout")
    with pytest.raises(PbxError) as absent:
        await pbx.click2call("1006", "0899098899")
    assert absent.value.code == "USER_NOT_REGISTERED"


async def finished_calls(http: httpx.AsyncClient) -> None:
    """Six short calls, one per agent: four answered, two busy, half of them outbound."""
    for n in range(6):
        ext, busy = f"100{n + 1}", n in (2, 5)
        await control(
            http,
            "calls",
            {
                "direction": "outbound" if n % 2 else "inbound",
                "exts": [ext],
                "answer_by": None if busy else ext,
                "outcome": "BUSY" if busy else None,
                "ring_seconds": 0,
                "talk_seconds": 1,
            },
        )


async def sim_now(http: httpx.AsyncClient) -> int:
    """The simulator's clock (epoch ms): at speed 20 it runs well ahead of ours."""
    return int((await http.get("http://sim/_sim/truth")).json()["now"])


async def test_reports_and_cdrs(http: httpx.AsyncClient, pbx: PbxClient) -> None:
    await finished_calls(http)

    async def all_ended() -> bool:
        start, end = TIME.day_window(await sim_now(http) + 2000)
        return (await pbx.call_status(start, end)).total == 6

    await eventually(all_ended)
    start, end = TIME.day_window(await sim_now(http) + 2000)
    status = await pbx.call_status(start, end)
    assert status.counts == {"ANSWERED": 4, "BUSY": 2}
    ids = await pbx.call_ids(start, end)
    assert len(ids) == 6
    with pytest.raises(PbxError) as caught:
        await pbx.call_status(end, start)
    assert caught.value.code == "BAD_DATE_RANGE"

    scrolled = [c async for c in pbx.iter_cdrs(start_date=start)]
    paged = [c async for c in pbx.iter_cdr_pages(limit=4)]
    assert len(scrolled) == len(paged) == 6
    assert {c.id for c in scrolled} == {c.id for c in paged} == {r.call_id.strip() for r in ids}
    assert {c.direction for c in scrolled} == {"inbound", "outbound"}
    busy = [c for c in scrolled if c.status == "BUSY"]
    assert len(busy) == 2
    assert all(c.time_answered == "" for c in busy)
    assert all(c.id == c.id.strip() for c in scrolled)

    page = await pbx.cdr_page(2, 2, direction="outbound")
    assert (page.page, page.limit, page.total, len(page.records)) == (2, 2, 3, 1)
    batch = await pbx.cdr_scroll(extension="1001")
    assert batch.scroll_id
    assert {c.extension for c in batch.records} == {"1001"}
    one = scrolled[0]
    assert await pbx.get_cdr(one.id) == one
    assert (await pbx.get_cdr(one.sip_call_id)).id == one.id
    with pytest.raises(PbxError) as missing:
        await pbx.get_cdr("no-such-cdr")
    assert missing.value.status == 404


async def test_event_hooks(pbx: PbxClient) -> None:
    assert await pbx.list_events() == []
    assert await pbx.create_event("ringing", "http://127.0.0.1:9/hooks/x", "cb-key") is True
    (hook,) = await pbx.list_events()
    assert (hook.event_name, hook.callback_url, hook.callback_apikey) == (
        "ringing",
        "http://127.0.0.1:9/hooks/x",
        "cb-key",
    )
    assert hook.domain_name == "sim.tel4vn.com"
    with pytest.raises(PbxError) as invalid:
        await pbx.create_event("create", "http://127.0.0.1:9/hooks/x", "cb-key")
    assert invalid.value.code == "INVALID_EVENT"
    assert await pbx.delete_event(hook.event_domain_uuid) is True
    assert await pbx.list_events() == []
    with pytest.raises(PbxError) as missing:
        await pbx.delete_event(hook.event_domain_uuid)
    assert missing.value.status == 404


async def test_tenants_and_extensions(pbx: PbxClient) -> None:
    created = await pbx.create_tenant("acme")
    assert created.domain == "acme.tel4vn.com"
    assert created.user is not None
    assert created.user.username == "admin"
    assert (await pbx.get_tenant("acme")).wss == created.wss
    assert await pbx.update_tenant("acme", enable=False) is True
    ext = await pbx.create_extension("acme", "104", "123Abc!@#")
    assert (ext.ext, ext.enabled) == ("104", True)
    assert await pbx.get_extension("acme", "104") == ext
    with pytest.raises(PbxError) as missing:
        await pbx.get_tenant("nobody")
    assert missing.value.code == "TENANT_NOT_FOUND"
    assert pbx.requests.get("/v1/auth/token", 0) == 0


@pytest.mark.parametrize(
    ("faults", "code"),
    [
        ({"error_rate": 1}, "HTTP_500"),
        ({"garbage_rate": 1}, "BAD_RESPONSE"),
        ({"timeout_rate": 1, "timeout_seconds": 5}, "TIMEOUT"),
    ],
)
async def test_faults_become_pbx_errors(http: httpx.AsyncClient, faults: dict[str, float], code: str) -> None:
    pbx = sim_client(http, "http://sim", timeout=0.3)
    await pbx.get_token()
    await control(http, "faults", faults)
    for _ in range(5):  # the garbage bodies vary; every one must be refused
        with pytest.raises(PbxError) as caught:
            await pbx.monitor_agents()
        assert caught.value.code == code


async def test_an_outage_is_http_503(http: httpx.AsyncClient, pbx: PbxClient) -> None:
    await control(http, "outage", {"seconds": 30})
    with pytest.raises(PbxError) as caught:
        await pbx.list_calls()
    assert caught.value.code == "HTTP_503"


async def test_over_a_real_server() -> None:
    app = create_sim_app(SimOptions(**OPTIONS))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await eventually(lambda: _started(server))
        async with httpx.AsyncClient() as http:
            pbx = sim_client(http, f"http://127.0.0.1:{port}", timeout=5.0)
            assert len(await pbx.monitor_agents()) == 7
            # The synchronous click-to-call answers once the extension picks up; the
            # lifespan's clock loop makes that happen without any other request.
            result = await pbx.click2call("1002", "0899098899", wait=True, auto_answer=True)
            assert result.call_id
            assert [c.call_id for c in await pbx.list_calls()] == [result.call_id]
            start, end = TIME.day_window(time.time() * 1000)
            assert (await pbx.call_status(start, end)).total >= 0
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
        sock.close()


async def _started(server: uvicorn.Server) -> bool:
    return server.started
