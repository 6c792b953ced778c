"""The simulator with --tenants: tenants t1..tN on one port, each its own PBX.

Tokens, calls, records and webhooks of one tenant never reach another; a tenant made
with the secret token is live at once; a disabled tenant's key is refused.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.servers import serving, until
from wallboard.sim.app import SimOptions, build_runtime, create_sim_app
from wallboard.sim.roster import build_roster
from wallboard.sim.runtime import Runtime

SECRET = {"Authorization": "Bearer sim-secret-token"}
QUIET = {"agents": 4, "seed": 3, "rate": 0, "prefill": False, "logged_in_ratio": 1.0}


@dataclass
class Served:
    http: httpx.AsyncClient
    base: str
    hooks: dict[str, list[dict[str, Any]]]  # receiver path -> bodies
    hook_base: str
    runtime: Runtime

    async def bearer(self, api_key: str) -> dict[str, str]:
        answer = await self.http.post(self.base + "/v1/auth/token", json={"api_key": api_key})
        assert answer.status_code == 200, answer.text
        return {"Authorization": "Bearer " + answer.json()["data"]["token"]}

    async def control(self, path: str, tenant: str, body: dict[str, Any] | None = None) -> Any:
        answer = await self.http.post(f"{self.base}/_sim/{path}", params={"tenant": tenant}, json=body or {})
        assert answer.status_code == 200, answer.text
        return answer.json()

    async def truth(self, tenant: str) -> dict[str, Any]:
        return dict((await self.http.get(self.base + "/_sim/truth", params={"tenant": tenant})).json())


@asynccontextmanager
async def served(**options: Any) -> AsyncIterator[Served]:
    """A real simulator with tenants behind uvicorn, and one real webhook receiver."""
    hooks: dict[str, list[dict[str, Any]]] = {}

    async def hook(request: Request) -> Response:
        hooks.setdefault(request.path_params["who"], []).append(await request.json())
        return Response(status_code=200)

    receiver = Starlette(routes=[Route("/hook/{who}", hook, methods=["POST"])])
    sim = create_sim_app(SimOptions(**{**QUIET, **options}))
    async with serving(receiver) as hook_base, serving(sim) as base, httpx.AsyncClient() as http:
        yield Served(http, base, hooks, hook_base, sim.state.sim)


async def test_each_tenant_has_its_own_key_logins_agents_and_calls() -> None:
    async with served(tenants=2, speed=20.0) as s:
        t1, t2 = await s.bearer("sim-api-key-t1"), await s.bearer("sim-api-key-t2")
        assert (await s.http.post(s.base + "/v1/auth/token", json={"api_key": "sim-api-key"})).status_code == 401
        for tenant, auth in (("t1", t1), ("t2", t2)):
            rows = (await s.http.get(s.base + "/v1/monitor/agent", headers=auth)).json()["data"]
            assert {r["domain_name"] for r in rows} == {f"{tenant}.sim.tel4vn.com"}
            assert {r["extension"] for r in rows} == {"999", "1001", "1002", "1003", "1004"}
        login = await s.http.post(s.base + "/v1/auth", json={"username": "supervisor@t2", "password": "supervisor"})
        data = login.json()["data"]
        assert (data["api_key"], data["level"], data["username"]) == ("sim-api-key-t2", "admin", "supervisor")
        viewer = await s.http.post(s.base + "/v1/auth", json={"username": "viewer@t1", "password": "viewer"})
        assert viewer.json()["data"]["level"] == "user"
        assert viewer.json()["data"]["domain_uuid"] != data["domain_uuid"]
        nobody = await s.http.post(s.base + "/v1/auth", json={"username": "supervisor@sim", "password": "supervisor"})
        assert nobody.status_code == 401

        # A call of t2 is seen, listed and acted on only with t2's token.
        flow = await s.control("calls", "t2", {"exts": ["1001"], "answer_by": "1001", "ring_seconds": 0,
                                               "number": "0899000002"})  # fmt: skip
        call_id = flow["flow_id"]
        assert (await s.http.get(s.base + "/v1/call", headers=t1)).json()["total"] == 0
        assert [r["call_id"] for r in (await s.http.get(s.base + "/v1/call", headers=t2)).json()["data"]] == [call_id]
        spy = await s.http.post(f"{s.base}/v1/call/{call_id}/listen", json={"ext": "999"}, headers=t1)
        assert spy.status_code == 404 and spy.json()["error"] == "CALL_NOT_FOUND"
        assert (await s.truth("t1"))["calls"] == []
        assert [c["call_id"] for c in (await s.truth("t2"))["calls"]] == [call_id]
        await s.control(f"calls/{call_id}/hangup", "t2")
        assert (await s.http.get(f"{s.base}/v1/cdr/{call_id}", headers=t1)).status_code == 404
        record = (await s.http.get(f"{s.base}/v1/cdr/{call_id}", headers=t2)).json()
        assert record["from_number"] == "0899000002"
        t1_records = (await s.http.get(s.base + "/v1/cdr", headers=t1)).json()["data"]
        assert t1_records == []
        # The control API acts on the tenant it names, and knows no other.
        assert (await s.http.get(s.base + "/_sim/truth", params={"tenant": "t9"})).status_code == 404
        assert (await s.truth("t1"))["domain"] == "t1.sim.tel4vn.com"
        assert (await s.http.get(s.base + "/_sim/truth")).json()["domain"] == "t1.sim.tel4vn.com"  # the first
        listed = (await s.http.get(s.base + "/_sim/tenants")).json()["data"]
        assert [(t["id"], t["api_key"], t["enabled"]) for t in listed] == [("t1", "sim-api-key-t1", True),
                                                                           ("t2", "sim-api-key-t2", True)]


async def test_tokens_faults_and_counts_are_per_tenant() -> None:
    async with served(tenants=2) as s:
        t1, t2 = await s.bearer("sim-api-key-t1"), await s.bearer("sim-api-key-t2")
        await s.control("outage", "t2", {"seconds": 30})
        assert (await s.http.get(s.base + "/v1/call", headers=t2)).status_code == 503
        assert (await s.http.post(s.base + "/v1/auth/token", json={"api_key": "sim-api-key-t2"})).status_code == 503
        assert (await s.http.get(s.base + "/v1/call", headers=t1)).status_code == 200
        await s.control("outage", "t2", {"seconds": 0})
        await s.control("tokens/expire", "t1")
        assert (await s.http.get(s.base + "/v1/call", headers=t1)).status_code == 401
        assert (await s.http.get(s.base + "/v1/call", headers=t2)).status_code == 200
        one = (await s.http.get(s.base + "/_sim/stats", params={"tenant": "t1"})).json()
        both = (await s.http.get(s.base + "/_sim/stats", params={"tenant": "all"})).json()
        assert one["requests"]["GET /v1/call"] == 2
        assert both["requests"]["GET /v1/call"] == 4 and set(both["tenants"]) == {"t1", "t2"}
        assert both["total"] == sum(both["tenants"].values())


async def test_webhooks_go_only_to_their_tenants_registrations() -> None:
    async with served(tenants=3, speed=50.0) as s:
        for tenant in ("t1", "t2"):
            auth = await s.bearer(f"sim-api-key-{tenant}")
            for event in ("ringing", "answered", "hangup", "cdr"):
                body = {"callback_url": f"{s.hook_base}/hook/{tenant}", "callback_apikey": tenant, "event": event}
                assert (await s.http.post(s.base + "/v1/event", json=body, headers=auth)).status_code == 200
            events = (await s.http.get(s.base + "/v1/event", headers=auth)).json()["data"]
            assert {e["callback_url"] for e in events} == {f"{s.hook_base}/hook/{tenant}"}
            assert {e["domain_name"] for e in events} == {f"{tenant}.sim.tel4vn.com"}
        flows = {}
        call = {"exts": ["1002"], "answer_by": "1002", "ring_seconds": 1, "talk_seconds": 2}
        for tenant in ("t1", "t2", "t3"):
            flows[tenant] = (await s.control("calls", tenant, call))["flow_id"]
        await until(lambda: all(sum(h["state"] == "cdr" for h in s.hooks.get(t, [])) == 1 for t in ("t1", "t2")),
                    10, "one cdr webhook for t1 and one for t2")
        for tenant in ("t1", "t2"):
            got = s.hooks[tenant]
            assert [h["state"] for h in got] == ["ringing", "answered", "hangup", "cdr"]
            assert {h["domain"] for h in got} == {f"{tenant}.sim.tel4vn.com"}
            assert {h["call_id"] for h in got} == {flows[tenant]}
        assert set(s.hooks) == {"t1", "t2"}  # t3 registered nothing, and nobody got its call


async def test_a_tenant_created_at_run_time_is_live() -> None:
    async with served(tenants=1, rate=120, speed=20.0, agents=6) as s:
        refused = await s.http.post(s.base + "/v1/tenant", json={"tenant_id": "acme"})
        assert refused.status_code == 401
        made = (await s.http.post(s.base + "/v1/tenant", json={"tenant_id": "acme"}, headers=SECRET)).json()
        assert made["created"] is True and made["data"]["domain"] == "acme.tel4vn.com"
        user = made["data"]["user"]
        auth = await s.bearer(user["api_key"])
        admin = await s.http.post(s.base + "/v1/auth", json={"username": "admin@acme", "password": user["password"]})
        assert admin.json()["data"]["api_key"] == user["api_key"]
        rows = (await s.http.get(s.base + "/v1/monitor/agent", headers=auth)).json()["data"]
        assert {r["domain_name"] for r in rows} == {"acme.tel4vn.com"} and "999" in {r["extension"] for r in rows}
        # Traffic of its own: records show up under its key, none of them t1's.
        await until(lambda: len(s.runtime.centers["acme"].cdrs) >= 3, 15, "three calls of the new tenant")
        acme = (await s.http.get(s.base + "/v1/cdr", params={"limit": 500}, headers=auth)).json()["data"]
        assert len(acme) >= 3
        t1 = await s.bearer("sim-api-key-t1")
        theirs = (await s.http.get(s.base + "/v1/cdr", params={"limit": 500}, headers=t1)).json()["data"]
        assert not {r["id"] for r in theirs} & {r["id"] for r in acme}
        # Its extensions, through the tenant API, are extensions of its live world.
        ext = await s.http.post(s.base + "/v1/tenant/acme/extension", json={"ext": "104", "pwd": "123Abc!@#"},
                                headers=SECRET)  # fmt: skip
        assert ext.json() == {"created": True, "data": {"enabled": "true", "ext": "104", "pwd": "123Abc!@#"}}
        taken = await s.http.post(s.base + "/v1/tenant/acme/extension", json={"ext": "1001", "pwd": "x"},
                                  headers=SECRET)  # fmt: skip
        assert taken.status_code == 409
        assert (await s.http.post(s.base + "/_sim/agents/104/login", params={"tenant": "acme"})).status_code == 200
        rows = (await s.http.get(s.base + "/v1/monitor/agent", headers=auth)).json()["data"]
        assert "104" in {r["extension"] for r in rows}
        own = (await s.http.get(s.base + "/v1/tenant/acme/extension/1001", headers=SECRET)).json()
        assert own["ext"] == "1001" and own["pwd"] and own["enabled"] == "true"
        assert (await s.http.get(s.base + "/v1/tenant/t1/extension/104", headers=SECRET)).status_code == 404


async def test_a_disabled_tenant_is_refused_and_comes_back() -> None:
    async with served(tenants=2, speed=50.0) as s:
        t2 = await s.bearer("sim-api-key-t2")
        auth = await s.bearer("sim-api-key-t1")
        body = {"callback_url": f"{s.hook_base}/hook/t1", "callback_apikey": "k", "event": "cdr"}
        assert (await s.http.post(s.base + "/v1/event", json=body, headers=auth)).status_code == 200
        off = await s.http.put(s.base + "/v1/tenant/t1", json={"enable": False}, headers=SECRET)
        assert off.json() == {"message": "update successfully"}
        refused = {"status": "fail", "error": "TENANT_DISABLED", "message": "tenant is disabled"}
        token = await s.http.post(s.base + "/v1/auth/token", json={"api_key": "sim-api-key-t1"})
        assert (token.status_code, token.json()) == (401, refused)
        old = await s.http.get(s.base + "/v1/monitor/agent", headers=auth)
        assert (old.status_code, old.json()) == (401, refused)
        login = await s.http.post(s.base + "/v1/auth", json={"username": "supervisor@t1", "password": "supervisor"})
        assert (login.status_code, login.json()) == (401, refused)
        assert (await s.http.get(s.base + "/v1/monitor/agent", headers=t2)).status_code == 200
        # Its PBX calls nobody back while disabled.
        await s.control("calls", "t1", {"exts": ["1001"], "ring_seconds": 0, "outcome": "BUSY"})
        assert (await s.truth("t1"))["counts"]["BUSY"] == 1
        assert (await s.http.put(s.base + "/v1/tenant/t1", json={"enable": True}, headers=SECRET)).status_code == 200
        assert (await s.http.get(s.base + "/v1/monitor/agent", headers=auth)).status_code == 200
        await s.control("calls", "t1", {"exts": ["1002"], "ring_seconds": 0, "outcome": "FAILED"})
        await until(lambda: s.hooks.get("t1"), 5, "the cdr webhook once enabled again")
        assert [h["status"] for h in s.hooks["t1"]] == ["FAILED"]


def test_each_tenant_is_seeded_by_the_seed_and_its_id() -> None:
    first = build_runtime(SimOptions(tenants=3, agents=5, seed=8, rate=30, prefill=False))
    again = build_runtime(SimOptions(tenants=3, agents=5, seed=8, rate=30, prefill=False))
    names = {c.id: [a.person.name for a in c.world.agents.values()] for c in first.centers.values()}
    assert names == {c.id: [a.person.name for a in c.world.agents.values()] for c in again.centers.values()}
    assert names["t1"] != names["t2"] != names["t3"]
    for one, two in zip(first.centers.values(), again.centers.values(), strict=True):
        one.world.advance(one.world.now + 600)
        two.world.advance(two.world.now + 600)
        assert [h.payload["call_id"] for h in one.world.take_hooks()] == [
            h.payload["call_id"] for h in two.world.take_hooks()]
    # Without --tenants the one tenant is the simulator of before, seeds included.
    single = build_runtime(SimOptions(agents=5, seed=8))
    assert list(single.centers) == ["sim"]
    assert [p.name for p in build_roster(5, random.Random("roster-8"))] == [
        a.person.name for a in single.world.agents.values()]
