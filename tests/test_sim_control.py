"""The /_sim/ control API: scripted calls and their webhooks, faults, outage, traffic, stats."""

from __future__ import annotations

from tests.sim_helpers import running_sim, wait_until


async def test_a_scripted_ring_group_call_sends_the_right_webhooks() -> None:
    async with running_sim(speed=20.0) as sim:
        await sim.register("ringing", "answered", "hangup", "cdr")
        flow = await sim.control("calls", {"direction": "inbound", "exts": ["1001", "1002"],
                                           "number": "0899123456", "hotline": "19001919",
                                           "answer_by": "1002", "ring_seconds": 3,
                                           "talk_seconds": 10})  # fmt: skip
        legs = {leg["ext"]: leg["call_id"] for leg in flow["legs"]}
        await wait_until(lambda: any(h["state"] == "cdr" for h in sim.hooks))
        seen = [(h["state"], h["call_id"]) for h in sim.hooks]
        assert seen == [("ringing", legs["1001"]), ("ringing", legs["1002"]),
                        ("answered", legs["1002"]), ("hangup", legs["1001"]),
                        ("hangup", legs["1002"]), ("cdr", flow["flow_id"])]  # fmt: skip
        cdr = sim.hooks[-1]
        assert cdr["status"] == "ANSWERED" and cdr["billsec"] == 10 and cdr["duration"] == 13
        assert cdr["to_number"] == "1002" and cdr["extension"] == "1002"
        for hook in sim.hooks:
            assert hook["from_number"] == "0899123456" and hook["hotline"] == "19001919"
            assert hook["domain"] == "sim.tel4vn.com" and len(hook["time"]) == 19
        assert {h["authorization"] for h in sim.hook_headers} == {"Bearer k3y"}
        assert {h["x-api-key"] for h in sim.hook_headers} == {"k3y"}
        truth = await sim.truth()
        assert truth["counts"]["ANSWERED"] == 1 and truth["total"] == 1 and truth["calls"] == []


async def test_manual_answer_and_hangup_and_truth_shapes() -> None:
    async with running_sim() as sim:
        await sim.register("hangup", "cdr")
        flow = await sim.control(
            "calls", {"direction": "outbound", "exts": ["1003"], "number": "0912345678", "ring_seconds": None}
        )
        call_id = flow["legs"][0]["call_id"]
        assert call_id == flow["flow_id"]
        truth = await sim.truth()
        assert set(truth) == {"now", "domain", "agents", "calls", "counts", "total"}
        agent = next(a for a in truth["agents"] if a["ext"] == "1003")
        assert agent == {"ext": "1003", "name": agent["name"], "state": "ringing",
                         "call_id": call_id, "since": agent["since"]}  # fmt: skip
        [call] = truth["calls"]
        assert call == {"call_id": call_id, "flow_id": call_id, "direction": "outbound",
                        "from": "1003", "to": "0912345678", "agent": "1003", "state": "ringing",
                        "hotline": "19001919", "started_at": call["started_at"],
                        "answered_at": None}  # fmt: skip
        await sim.control(f"calls/{call_id}/answer")
        assert (await sim.truth())["calls"][0]["state"] == "answered"
        await sim.control(f"calls/{call_id}/hangup")
        assert (await sim.client.post(f"/_sim/calls/{call_id}/hangup")).status_code == 404
        await wait_until(lambda: len(sim.hooks) == 2)
        assert [h["state"] for h in sim.hooks] == ["hangup", "cdr"]
        assert (await sim.truth())["counts"]["ANSWERED"] == 1


async def test_scripted_calls_are_checked() -> None:
    async with running_sim() as sim:
        c = sim.client
        bad = [{"direction": "sideways", "exts": ["1001"]}, {"exts": []},
               {"direction": "outbound", "exts": ["1001", "1002"]},
               {"exts": ["1001"], "answer_by": "1002"}, {"exts": ["1001"], "outcome": "MAYBE"},
               {"exts": ["1001"], "ring_seconds": -1}]  # fmt: skip
        for body in bad:
            assert (await c.post("/_sim/calls", json=body)).status_code == 400, body
        await sim.control("agents/1001/logout")
        refused = await c.post("/_sim/calls", json={"exts": ["1001"]})
        assert refused.status_code == 409 and refused.json()["error"] == "USER_NOT_REGISTERED"
        await sim.control("calls", {"exts": ["1002"]})
        busy = await c.post("/_sim/calls", json={"exts": ["1002"]})
        assert busy.json()["error"] == "USER_BUSY"
        assert (await c.post("/_sim/agents/4242/login")).status_code == 404


async def test_unanswered_outcome_is_reported() -> None:
    async with running_sim(speed=50.0) as sim:
        await sim.control("calls", {"exts": ["1001", "1002"], "ring_seconds": 1,
                                    "outcome": "FAILED"})  # fmt: skip
        rt = sim.runtime
        await wait_until(lambda: rt.sync() or len(rt.cdrs) == 1)
        assert (await sim.truth())["counts"]["FAILED"] == 1


async def test_error_garbage_latency_and_outage_faults_spare_the_control_api() -> None:
    async with running_sim() as sim:
        c = sim.client
        current = await sim.control("faults", {"error_rate": 1.0})
        assert current["error_rate"] == 1.0 and current["garbage_rate"] == 0.0
        failed = await c.get("/v1/monitor/agent")
        assert failed.status_code == 500 and failed.json()["status"] == "fail"
        assert (await c.get("/_sim/truth")).status_code == 200
        await sim.control("faults", {"error_rate": 0.0, "garbage_rate": 1.0})
        for _ in range(8):
            garbage = await c.get("/v1/monitor/agent")
            assert garbage.status_code == 200
            assert not garbage.content.startswith(b'{"data":[')
        await sim.control("faults", {"garbage_rate": 0.0, "latency_ms": 150})
        import time

        started = time.monotonic()
        assert (await c.get("/v1/call")).status_code == 200
        assert time.monotonic() - started >= 0.15
        await sim.control("faults", {"latency_ms": 0})
        await sim.control("outage", {"seconds": 30})
        down = await c.get("/v1/call")
        assert down.status_code == 503
        assert (await c.post("/v1/auth/token", json={"api_key": "sim-api-key"})).status_code == 503
        await sim.control("outage", {"seconds": 0})
        assert (await c.get("/v1/call")).status_code == 200
        assert (await c.post("/_sim/faults", json={"nope": 1})).status_code == 400
        assert (await c.post("/_sim/faults", json={"error_rate": 2})).status_code == 400
        assert (await c.get("/_sim/faults")).json()["outage_seconds_left"] == 0


async def test_webhook_drop_and_duplicate_faults() -> None:
    async with running_sim(speed=50.0) as sim:
        await sim.register("cdr")
        await sim.control("faults", {"hook_drop": 1.0})
        await sim.control("calls", {"exts": ["1001"], "ring_seconds": 0, "outcome": "BUSY"})
        await wait_until(lambda: sim.runtime.stats.hooks["dropped"] == 1)
        await sim.control("faults", {"hook_drop": 0.0, "hook_duplicate": 1.0})
        flow = await sim.control("calls", {"exts": ["1002"], "ring_seconds": 0})
        await wait_until(lambda: len(sim.hooks) == 2)
        assert [h["call_id"] for h in sim.hooks] == [flow["flow_id"]] * 2
        stats = (await sim.client.get("/_sim/stats")).json()
        assert stats["hooks"]["dropped"] == 1 and stats["hooks"]["duplicated"] == 1


async def test_webhook_delay_and_reorder_faults() -> None:
    async with running_sim() as sim:
        await sim.register("ringing")
        await sim.control("faults", {"hook_reorder": 1.0})
        first = await sim.control("calls", {"exts": ["1001"]})
        second = await sim.control("calls", {"exts": ["1002"]})
        await wait_until(lambda: len(sim.hooks) == 2)
        assert [h["call_id"] for h in sim.hooks] == [second["flow_id"], first["flow_id"]]
        await sim.control("faults", {"hook_reorder": 0.0, "hook_delay": 1.0,
                                     "hook_delay_seconds": 0.3})  # fmt: skip
        await sim.control("calls", {"exts": ["1003"]})
        await sim.control("calls", {"exts": ["1004"]})
        await wait_until(lambda: len(sim.hooks) == 4)
        assert (await sim.client.get("/_sim/stats")).json()["hooks"]["delayed"] == 2


async def test_traffic_rate_and_stats() -> None:
    async with running_sim(agents=30, speed=30.0) as sim:
        await sim.client.get("/v1/monitor/agent")
        await sim.client.get("/v1/cdr/0123456789abcdef")
        assert (await sim.client.post("/_sim/traffic", json={"rate": -1})).status_code == 400
        assert await sim.control("traffic", {"rate": 120}) == {"rate": 120.0}
        await wait_until(lambda: sim.runtime.sync() or len(sim.runtime.cdrs) >= 3, within=10)
        await sim.control("traffic", {"rate": 0})
        stats = (await sim.client.get("/_sim/stats")).json()
        assert stats["requests"]["GET /v1/monitor/agent"] == 1
        assert stats["requests"]["GET /v1/cdr/{id}"] == 1
        assert stats["total"] >= 5
