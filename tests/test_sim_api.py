"""Every vendor endpoint of the simulator against the reference's shapes and errors."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.sim_helpers import running_sim
from wallboard.sim.app import SimOptions, create_sim_app

MONITOR_FIELDS = {"agent_name", "call_id", "call_state", "call_time", "destination", "direction",
                  "domain_id", "domain_name", "extension", "extension_id", "network_ip",
                  "server_host", "user_agent", "user_id", "username"}  # fmt: skip
CDR_FIELDS = {"id", "sip_call_id", "cause", "duration", "direction", "recording_url", "extension",
              "from_number", "to_number", "receive_dest", "time_started", "time_answered",
              "time_ended", "status"}  # fmt: skip
CALL_FIELDS = {"call_id", "context", "created_time", "destination", "direction", "ip", "source",
               "state"}  # fmt: skip


def _local(sim_now: float, delta: float = 0.0) -> str:
    from zoneinfo import ZoneInfo

    moment = datetime.fromtimestamp(sim_now, ZoneInfo("Asia/Ho_Chi_Minh")) + timedelta(seconds=delta)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


async def test_login_and_token_answer_the_reference_shapes() -> None:
    async with running_sim() as sim:
        c = sim.client
        ok = await c.post("/v1/auth", json={"username": "supervisor@sim", "password": "supervisor"})
        data = ok.json()["data"]
        assert set(data) == {"user_uuid", "domain_uuid", "username", "api_key", "user_enabled",
                             "level"}  # fmt: skip
        assert data["level"] == "admin" and data["api_key"] == "sim-api-key"
        viewer = await c.post("/v1/auth", json={"username": "viewer@sim", "password": "viewer"})
        assert viewer.json()["data"]["level"] == "user"
        bad = await c.post("/v1/auth", json={"username": "viewer@sim", "password": "nope"})
        assert bad.status_code == 401 and bad.json()["error"] == "INVALID_CREDENTIALS"
        token = (await c.post("/v1/auth/token", json={"api_key": "sim-api-key"})).json()["data"]
        assert isinstance(token["expired"], int) and isinstance(token["token"], str)
        assert set(token) == {"expired", "token", "user_id"}
        wrong = await c.post("/v1/auth/token", json={"api_key": "x"})
        assert wrong.status_code == 401


async def test_missing_wrong_and_expired_bearers_get_401() -> None:
    async with running_sim() as sim:
        c = sim.client
        expected = {"status": "fail", "error": "UNAUTHORIZED", "message": "invalid or expired token"}
        for headers in ({"Authorization": ""}, {"Authorization": "Bearer nope"}):
            answer = await c.get("/v1/monitor/agent", headers=headers)
            assert answer.status_code == 401 and answer.json() == expected
        assert (await c.get("/v1/monitor/agent")).status_code == 200
        await sim.control("tokens/expire")
        assert (await c.get("/v1/monitor/agent")).status_code == 401


async def test_token_lifetime_is_configurable() -> None:
    async with running_sim(token_lifetime=120) as sim:
        answer = await sim.client.post("/v1/auth/token", json={"api_key": "sim-api-key"})
        import time

        assert abs(answer.json()["data"]["expired"] - (time.time() + 120)) < 5


async def test_events_list_create_delete() -> None:
    async with running_sim() as sim:
        c = sim.client
        body = {"callback_url": "https://webhook.demo/", "callback_apikey": "foo", "event": "hangup"}
        assert (await c.post("/v1/event", json=body)).json() == {"created": True}
        rows = (await c.get("/v1/event")).json()["data"]
        assert len(rows) == 1
        assert set(rows[0]) == {"event_domain_uuid", "domain_uuid", "domain_name", "event_name",
                                "callback_url", "callback_apikey"}  # fmt: skip
        assert rows[0]["event_name"] == "hangup" and rows[0]["domain_name"] == "sim.tel4vn.com"
        bad = await c.post("/v1/event", json={**body, "event": "create"})
        assert bad.status_code == 400 and bad.json() == {
            "status": "fail",
            "error": "INVALID_EVENT",
            "message": "unknown event 'create'",
        }
        uuid = rows[0]["event_domain_uuid"]
        assert (await c.delete(f"/v1/event/{uuid}")).json() == {"deleted": True}
        assert (await c.delete(f"/v1/event/{uuid}")).status_code == 404
        assert (await c.get("/v1/event")).json() == {"data": []}


async def test_monitor_lists_logged_in_agents_with_the_reference_fields() -> None:
    async with running_sim(logged_in_ratio=0.5, agents=20) as sim:
        answer = (await sim.client.get("/v1/monitor/agent")).json()
        truth = await sim.truth()
        online = {a["ext"] for a in truth["agents"] if a["state"] != "offline"}
        assert {r["extension"] for r in answer["data"]} == online
        assert answer["total"] == len(online) and "999" in online
        for row in answer["data"]:
            assert set(row) | {"call_state"} == MONITOR_FIELDS
            assert row.get("call_state") in ("", None)  # idle, in the PBX's three spellings
        spellings = {repr(r.get("call_state", "missing")) for r in answer["data"]}
        assert len(spellings) == 3


async def test_calls_and_monitor_show_a_ringing_ring_group() -> None:
    async with running_sim() as sim:
        flow = await sim.control(
            "calls", {"direction": "inbound", "exts": ["1001", "1002"], "number": "0899123456", "hotline": "19001919"}
        )
        calls = (await sim.client.get("/v1/call")).json()
        assert calls["total"] == 2 and {set(r) == CALL_FIELDS for r in calls["data"]} == {True}
        ids = {leg["call_id"] for leg in flow["legs"]}
        assert {r["call_id"] for r in calls["data"]} == ids and flow["flow_id"] not in ids
        assert {r["state"] for r in calls["data"]} == {"CS_ROUTING"}
        assert {r["source"] for r in calls["data"]} == {"0899123456"}
        rows = {r["extension"]: r for r in (await sim.client.get("/v1/monitor/agent")).json()["data"]}
        assert rows["1001"]["call_state"] == "RINGING" and rows["1001"]["direction"] == "inbound"
        assert rows["1001"]["call_id"] in ids and rows["1001"]["destination"] == "0899123456"
        await sim.control(f"calls/{flow['legs'][1]['call_id']}/answer")
        calls = (await sim.client.get("/v1/call")).json()["data"]
        assert [(r["destination"], r["state"]) for r in calls] == [("1002", "CS_EXCHANGE_MEDIA")]


async def test_report_date_rules() -> None:
    async with running_sim() as sim:
        now = sim.runtime.clock.now()
        for path in ("/v1/report/call_status", "/v1/report/call_id"):

            async def ask(start: str, end: str, path: str = path) -> httpx.Response:
                return await sim.client.get(path, params={"start_date": start, "end_date": end})

            swapped = await ask(_local(now), _local(now, -60))
            assert swapped.status_code == 400
            assert swapped.json() == {"error": "start_date must be after end_date"}
            wide = await ask(_local(now, -90000), _local(now))
            assert wide.json() == {"error": "date range must be in 24 hours"}
            bad = await ask("2021-06-01", _local(now))
            assert bad.status_code == 400 and bad.json() == {"error": "invalid date format"}
            missing = await sim.client.get(path)
            assert missing.json() == {"error": "invalid date format"}
            assert (await ask(_local(now, -86400), _local(now))).status_code == 200


async def test_reports_count_the_prefilled_day() -> None:
    async with running_sim(rate=30, prefill=True) as sim:
        rt = sim.runtime
        now = rt.clock.now()
        start = max(rt.local.midnight(now), now - 86399)
        params = {"start_date": _local(start), "end_date": _local(now, 1)}
        status = (await sim.client.get("/v1/report/call_status", params=params)).json()
        assert status["total"] == sum(r["count"] for r in status["data"])
        assert all(set(r) == {"count", "status"} for r in status["data"])
        ids = (await sim.client.get("/v1/report/call_id", params=params)).json()
        assert ids["total"] == status["total"]
        assert all(set(r) == {"call_id", "sip_call_id"} for r in ids["data"])
        truth = await sim.truth()
        if now - rt.local.midnight(now) > 600:  # just after midnight the day may be empty
            assert truth["total"] > 0
            assert truth["total"] == status["total"]


async def test_cdr_scroll_pagination_filters_and_get() -> None:
    async with running_sim(rate=60, prefill=True, seed=9) as sim:
        c = sim.client
        total = len(sim.runtime.cdrs)
        first = (await c.get("/v1/cdr")).json()
        assert set(first) == {"data", "scroll_id"} and len(first["data"]) == min(100, total)
        seen = [r["id"] for r in first["data"]]
        while True:
            more = (await c.get("/v1/cdr", params={"scroll_id": first["scroll_id"]})).json()
            if not more["data"]:
                break
            seen += [r["id"] for r in more["data"]]
        assert len(seen) == len(set(seen)) == total
        unknown = await c.get("/v1/cdr", params={"scroll_id": "nope"})
        assert unknown.status_code == 400
        page = (await c.get("/v1/cdr", params={"page": 2, "limit": 5})).json()
        assert set(page) == {"data", "limit", "page", "total"}
        assert (page["limit"], page["page"], page["total"]) == (5, 2, total)
        assert [r["id"] for r in page["data"]] == seen[5:10]
        offset = (await c.get("/v1/cdr", params={"offset": 7, "limit": 3})).json()
        assert [r["id"] for r in offset["data"]] == seen[7:10]
        row: dict[str, Any] = page["data"][0]
        assert set(row) == CDR_FIELDS and isinstance(row["direction"], int)
        for key in ("status", "extension"):
            some = (await c.get("/v1/cdr", params={key: row[key], "limit": 500})).json()["data"]
            assert some and all(r[key] == row[key] for r in some)
        outbound = (await c.get("/v1/cdr", params={"direction": "outbound", "limit": 500})).json()
        assert {r["direction"] for r in outbound["data"]} == {3}
        longer = (await c.get("/v1/cdr", params={"min_duration": 60, "limit": 500})).json()
        assert all(r["duration"] > 60 for r in longer["data"])
        exact = (await c.get("/v1/cdr", params={"duration": row["duration"], "limit": 500})).json()
        assert row["id"] in [r["id"] for r in exact["data"]]
        phone = (await c.get("/v1/cdr", params={"phone": row["from_number"], "limit": 500})).json()
        assert row["id"] in [r["id"] for r in phone["data"]]
        window = {"start_date": row["time_started"], "end_date": row["time_started"], "limit": 500}
        assert row["id"] in [r["id"] for r in (await c.get("/v1/cdr", params=window)).json()["data"]]
        ended = {"start_date_ended": row["time_ended"], "end_date_ended": row["time_ended"]}
        hits = (await c.get("/v1/cdr", params={**ended, "limit": 500})).json()["data"]
        assert all(r["time_ended"] == row["time_ended"] for r in hits) and hits
        answered = next(r for r in seen_rows(first) if r["recording_url"])
        file = answered["recording_url"].rsplit("/", 1)[1]
        by_file = (await c.get("/v1/cdr", params={"recordingfile": file, "limit": 5})).json()
        assert [r["id"] for r in by_file["data"]] == [answered["id"]]
        assert (await c.get("/v1/cdr", params={"start_date": "yesterday"})).status_code == 400
        assert (await c.get(f"/v1/cdr/{row['id']}")).json() == row
        assert (await c.get(f"/v1/cdr/{row['sip_call_id']}")).json() == row
        assert (await c.get("/v1/cdr/nope")).status_code == 404
        spaced = [r for r in seen_rows(first) if r["id"].endswith(" ")]
        assert spaced, "the trailing-space quirk should show in a day of records"
        got = (await c.get(f"/v1/cdr/{spaced[0]['id'].strip()}")).json()
        assert got["id"] == spaced[0]["id"]


def seen_rows(first: dict[str, Any]) -> list[dict[str, Any]]:
    return list(first["data"])


async def test_click2call_async_and_sync() -> None:
    async with running_sim(speed=20.0) as sim:
        c = sim.client
        answer = (await c.get("/v1/click2call/async", params={"ext": "1001", "phone": "0899"})).json()
        assert answer["status"] == "success" and isinstance(answer["call_id"], str)
        busy = (await c.get("/v1/click2call/async", params={"ext": "1001", "phone": "0899"})).json()
        assert busy["error"] == "USER_BUSY" and busy["status"] == "fail"
        await sim.control("agents/1002/logout")
        gone = (await c.get("/v1/click2call", params={"ext": "1002", "phone": "0899"})).json()
        assert gone == {
            "status": "fail",
            "error": "USER_NOT_REGISTERED",
            "message": "User not registered extension with Softphone or IP Phone",
        }
        assert (await c.get("/v1/click2call", params={"ext": "1003"})).status_code == 400
        sync = (await c.get("/v1/click2call", params={"ext": "1003", "phone": "0899"})).json()
        assert sync["status"] == "success"
        # The sync answer comes once the extension has picked up (or declined).
        truth = await sim.truth()
        agent = next(a for a in truth["agents"] if a["ext"] == "1003")
        calls = [x for x in truth["calls"] if x["call_id"] == sync["call_id"]]
        assert agent["state"] in ("ringing", "oncall", "idle")
        assert all(x["from"] == "1003" and x["direction"] == "outbound" for x in calls)
        assert (await c.get("/v1/report/call_id")).status_code == 400


async def test_transfer_listen_whisper_barge() -> None:
    async with running_sim(speed=10.0) as sim:
        c = sim.client
        flow = await sim.control(
            "calls", {"direction": "inbound", "exts": ["1001"], "answer_by": "1001", "ring_seconds": 0}
        )
        call_id = flow["legs"][0]["call_id"]
        assert call_id == flow["flow_id"]  # one mobile to one extension: one call_id
        for action in ("listen", "whisper", "barge", "transfer"):
            missing = await c.post(f"/v1/call/nope/{action}", json={"ext": "999"})
            assert missing.status_code == 404 and missing.json()["error"] == "CALL_NOT_FOUND"
        await sim.control("agents/1004/logout")
        offline = (await c.post(f"/v1/call/{call_id}/listen", json={"ext": "1004"})).json()
        assert offline["error"] == "USER_NOT_REGISTERED"
        listen = (await c.post(f"/v1/call/{call_id}/listen", json={"ext": "999"})).json()
        assert listen == {"status": "success", "call_id": call_id, "ext": "999"}
        rows = {r["extension"]: r for r in (await c.get("/v1/monitor/agent")).json()["data"]}
        assert rows["999"]["call_state"] == "RINGING" and rows["999"]["destination"] == "1001"
        assert rows["999"]["call_id"] not in (call_id, "")
        busy = (await c.post(f"/v1/call/{call_id}/barge", json={"ext": "999"})).json()
        assert busy["error"] == "USER_BUSY"
        deadline = sim.runtime.clock.now() + 10  # the simulator's clock: it joins 1 s after ringing
        while sim.runtime.clock.now() < deadline:
            rows = {r["extension"]: r for r in (await c.get("/v1/monitor/agent")).json()["data"]}
            if rows["999"]["call_state"] == "ONCALL":
                break
        assert rows["999"]["call_state"] == "ONCALL"
        moved = (await c.post(f"/v1/call/{call_id}/transfer", json={"ext": "1002"})).json()
        assert moved == {"status": "success", "call_id": call_id, "ext": "1002"}
        truth = await sim.truth()
        states = {a["ext"]: a["state"] for a in truth["agents"]}
        assert states["1001"] == "idle" and states["1002"] == "ringing"
        assert states["999"] == "idle"  # the spy leg ends with the leg it listened to
        assert (await c.post(f"/v1/call/{call_id}/nope", json={"ext": "1"})).status_code == 404


async def test_tenant_and_extension_endpoints_need_the_secret_token() -> None:
    async with running_sim() as sim:
        c = sim.client
        secret = {"Authorization": "Bearer sim-secret-token"}
        denied = await c.post("/v1/tenant", json={"tenant_id": "test01"})
        assert denied.status_code == 401
        made = (await c.post("/v1/tenant", json={"tenant_id": "test01"}, headers=secret)).json()
        assert made["created"] is True and made["data"]["domain"] == "test01.tel4vn.com"
        assert set(made["data"]) == {"domain", "tenant_url", "outbound_proxy", "port",
                                     "transports", "wss", "user"}  # fmt: skip
        assert set(made["data"]["user"]) == {"api_key", "enabled", "group", "password",
                                             "user_id", "username"}  # fmt: skip
        again = await c.post("/v1/tenant", json={"tenant_id": "test01"}, headers=secret)
        assert again.status_code == 409
        got = (await c.get("/v1/tenant/test01", headers=secret)).json()
        assert got == {k: v for k, v in made["data"].items() if k != "user"}
        assert (await c.get("/v1/tenant/none", headers=secret)).status_code == 404
        update = await c.put("/v1/tenant/test01", json={"enable": False}, headers=secret)
        assert update.json() == {"message": "update successfully"}
        body = {"ext": "104", "pwd": "123Abc!@#"}
        ext = (await c.post("/v1/tenant/test01/extension", json=body, headers=secret)).json()
        assert ext == {"created": True, "data": {"enabled": "true", "ext": "104", "pwd": "123Abc!@#"}}
        for path in ("/v1/tenant/test01/extension/extension/104", "/v1/tenant/test01/extension/104"):
            found = (await c.get(path, headers=secret)).json()
            assert found == {"ext": "104", "pwd": "123Abc!@#", "enabled": "true"}
        assert (await c.get("/v1/tenant/test01/extension/105", headers=secret)).status_code == 404


async def test_without_lifespan_the_world_still_moves_on_requests() -> None:
    app = create_sim_app(SimOptions(agents=3, rate=0, prefill=False, logged_in_ratio=1.0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://s") as c:
        flow = (
            await c.post(
                "/_sim/calls", json={"exts": ["1001"], "answer_by": "1001", "ring_seconds": 0, "talk_seconds": 0}
            )
        ).json()
        truth = (await c.get("/_sim/truth")).json()
        assert truth["calls"] == [] and truth["counts"]["ANSWERED"] == 1
        assert flow["legs"][0]["ext"] == "1001"


def test_the_backlog_is_made_when_read_and_sorts_in_before_live_records() -> None:
    from wallboard.sim.app import build_runtime

    rt = build_runtime(SimOptions(agents=4, seed=3, rate=30, logged_in_ratio=1.0))
    store = rt.cdrs
    flow = rt.world.start_outbound(ext="1001", number="0899", hotline="19001919", ring_seconds=0,
                                   talk_seconds=None, answered=False, outcome="BUSY")  # fmt: skip
    rt.world.advance(rt.world.now)
    assert not store.loaded  # a live record did not make it
    now = rt.clock.now()
    records = store.between(rt.local.midnight(now), now + 60)
    assert store.loaded and records[-1].id.strip() == flow.flow_id
    assert [c.started for c in records] == sorted(c.started for c in records)
    if now - rt.local.midnight(now) > 600:
        assert len(records) > 1
