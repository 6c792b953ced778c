"""Many tenants in one deployment (SPEC section 10), on real servers: the simulator serving
two tenants and one wallboard with both. Each tenant's board sees only its own PBX; a
cookie, kiosk token, call id or webhook secret of one is nothing on the other's paths; and
no frame sent to one tenant's screens ever holds the other's ids or numbers."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets

from tests.servers import listener, port_of, serving, until
from wallboard.app import create_app, parts_of, site_of
from wallboard.settings import Settings, defaults
from wallboard.sim.app import SimOptions, create_sim_app
from wallboard.sim.runtime import Runtime
from wallboard.tenancy import Parts

KIOSK = {"t1": "kiosk-token-of-tenant-one", "t2": "kiosk-token-of-tenant-two"}
HOOK_SECRETS = {"t1": "hook-secret-of-tenant-one", "t2": "hook-secret-of-tenant-two"}


def settings(tmp: Path, port: int, sim_url: str) -> Settings:
    return defaults().with_values(
        server={"public_url": f"http://127.0.0.1:{port}", "port": port},
        pbx={"base_url": sim_url, "timeout": 2.0},
        poll={"agents_interval": 0.5, "calls_interval": 0.5, "status_interval": 5.0, "cdr_interval": 10.0},
        storage={"path": str(tmp / "wb.db")},
        tenants=[{"id": t, "name": f"Tenant {t}", "api_key": f"sim-api-key-{t}", "kiosk_tokens": [KIOSK[t]]}
                 for t in ("t1", "t2")],
    )


@dataclass
class Deployment:
    sim: Runtime
    sim_url: str
    url: str
    app: Any

    def tenant(self, tenant_id: str) -> Parts:
        return parts_of(self.app, tenant_id)


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    sim_app = create_sim_app(SimOptions(tenants=2, agents=6, seed=7, rate=30, logged_in_ratio=1.0))
    async with serving(sim_app) as sim_url:
        sock = listener()
        app = create_app(settings(tmp_path, port_of(sock), sim_url))
        async with serving(app, sock) as url:
            site = site_of(app)
            await until(lambda: all(p.engine.hooks_registered is not None and p.engine.poller.first_success.is_set()
                                    for p in site.tenants.values()), 20, "both tenants registered and polled")
            yield Deployment(sim_app.state.sim, sim_url, url, app)


async def login(client: httpx.AsyncClient, tenant: str, user: str) -> None:
    page = await client.get(f"/t/{tenant}/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text[:300]
    answer = await client.post(f"/t/{tenant}/login", data={
        "username": f"{user}@{tenant}", "password": user, "csrf_token": token[1]})
    assert answer.status_code == 303, answer.text[:300]
    assert answer.headers["location"] == f"/t/{tenant}/"


async def test_each_tenant_sees_its_own_pbx_and_only_it(deployment: Deployment) -> None:
    async with httpx.AsyncClient(base_url=deployment.url) as c:
        states = {t: (await c.get(f"/t/{t}/api/state", params={"token": KIOSK[t]})).json() for t in ("t1", "t2")}
    assert states["t1"]["domain"] == "t1.sim.tel4vn.com" and states["t2"]["domain"] == "t2.sim.tel4vn.com"
    assert states["t1"]["epoch"] != states["t2"]["epoch"]
    for t in ("t1", "t2"):
        assert {a["ext"] for a in states[t]["agents"]} >= {"1001", "1006"}


async def test_nothing_of_one_tenant_works_on_the_other(deployment: Deployment) -> None:
    async with httpx.AsyncClient(base_url=deployment.url) as c:
        # a kiosk token of t1 on t2's paths
        assert (await c.get("/t/t2/api/state", params={"token": KIOSK["t1"]})).status_code == 401
        assert (await c.get("/t/t2/kiosk", params={"token": KIOSK["t1"]})).status_code == 303
        # a session of t1 on t2's paths: the browser's cookie is for /t/t1/, and even sent by
        # hand to /t/t2/ it is unknown there
        await login(c, "t1", "supervisor")
        assert (await c.get("/t/t1/api/state")).status_code == 200
        cookie = c.cookies.get("wb_session", path="/t/t1/")
        assert cookie
        answer = await c.get("/t/t2/api/state", headers={"cookie": f"wb_session={cookie}"})
        assert answer.status_code == 401
        # a call of t2 acted on from t1's supervisor session: not t1's call
        t2_calls = deployment.tenant("t2").engine.live.calls
        await until(lambda: t2_calls, 20, "a call on t2")
        foreign = next(iter(t2_calls))
        csrf = re.search(r'"csrf": "([^"]+)"', (await c.get("/t/t1/")).text)
        assert csrf
        answer = await c.post(f"/t/t1/api/calls/{foreign}/listen", json={"ext": "1001"},
                              headers={"X-CSRF-Token": csrf[1]})
        assert answer.json()["ok"] is False  # t1's PBX knows no such call
        # a webhook with t1's secret on t2's path
        body = {"state": "ringing", "call_id": "forged", "direction": "inbound", "from_number": "0900000000",
                "to_number": "1001"}
        t1_secret = deployment.tenant("t1").engine.webhook_secret
        assert (await c.post(f"/hooks/pbx/t2/{t1_secret}", json=body)).status_code == 404
        assert (await c.post(f"/hooks/pbx/t1/{t1_secret}", json=body)).status_code == 200
        assert "forged" not in deployment.tenant("t2").engine.live.calls
        # unknown tenants and the bare root
        assert (await c.get("/t/t9/")).status_code == 404
        assert (await c.get("/")).status_code == 404


async def test_no_frame_to_one_tenants_screens_holds_the_others_ids(deployment: Deployment) -> None:
    """Live traffic on both tenants for a few seconds: every frame a t1 screen receives is
    free of t2's call ids and caller numbers, and the other way round."""
    seen: dict[str, list[bytes]] = {"t1": [], "t2": []}
    ws_url = deployment.url.replace("http", "ws")

    async def watch(tenant: str, stop: asyncio.Event) -> None:
        url = f"{ws_url}/t/{tenant}/ws?token={KIOSK[tenant]}"
        async with websockets.connect(url, origin=deployment.url, max_size=None) as ws:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    frame = await asyncio.wait_for(ws.recv(), 0.2)
                    seen[tenant].append(frame if isinstance(frame, bytes) else frame.encode())

    stop = asyncio.Event()
    watchers = [asyncio.create_task(watch(t, stop)) for t in ("t1", "t2")]
    ids: dict[str, set[str]] = {"t1": set(), "t2": set()}

    def collect() -> bool:
        for t in ("t1", "t2"):
            for call in deployment.tenant(t).engine.live.calls.values():
                ids[t].add(call["call_id"])
        return all(len(v) >= 3 for v in ids.values())

    await until(collect, 30, "calls on both tenants")
    stop.set()
    await asyncio.gather(*watchers)
    for mine, other in (("t1", "t2"), ("t2", "t1")):
        text = b"".join(seen[mine])
        assert seen[mine] and orjson.loads(seen[mine][0])["type"] == "snapshot"
        leaked = [call_id for call_id in ids[other] if call_id.encode() in text]
        assert leaked == [], f"{mine}'s screens saw {other}'s calls"


def cli_config(tmp: Path, deployment: Deployment) -> Path:
    """The config the `wallboard tenants` commands read: the running deployment's database."""
    path = tmp / "cli.toml"
    storage = site_of(deployment.app).settings.storage.path
    path.write_text(f'[pbx]\nbase_url = "{deployment.sim_url}"\n[storage]\npath = "{storage}"\n'
                    '[provider]\nsecret_token = "sim-secret-token"\n'
                    + "".join(f'[[tenants]]\nid = "{t}"\napi_key = "sim-api-key-{t}"\n' for t in ("t1", "t2")))
    return path


async def test_a_tenant_created_disabled_and_removed_while_the_others_run(deployment: Deployment,
                                                                          tmp_path: Path) -> None:
    from click.testing import CliRunner

    from wallboard.cli import main

    config = str(cli_config(tmp_path, deployment))
    site = site_of(deployment.app)
    run = CliRunner().invoke
    ws_url = deployment.url.replace("http", "ws") + f"/t/t1/ws?token={KIOSK['t1']}"
    async with websockets.connect(ws_url, origin=deployment.url, max_size=None) as t1_screen:
        first = orjson.loads(await t1_screen.recv())
        assert first["type"] == "snapshot"

        made = await asyncio.to_thread(run, main, ["tenants", "create", "t3", "--name", "Third", "--config", config])
        assert made.exit_code == 0, made.output
        assert "sim-api-key" not in made.output and "created on the PBX" in made.output
        await until(lambda: "t3" in site.tenants and site.tenants["t3"].engine.poller.first_success.is_set(),
                    15, "t3 started and polled")
        async with httpx.AsyncClient(base_url=deployment.url) as c:
            assert (await c.get("/t/t3/login")).status_code == 200
        listed = await asyncio.to_thread(run, main, ["tenants", "list", "--config", config])
        assert re.search(r"^t3 +enabled +stored +Third$", listed.output, re.M), listed.output

        done = await asyncio.to_thread(run, main, ["tenants", "disable", "t3", "--config", config])
        assert done.exit_code == 0, done.output
        await until(lambda: "t3" not in site.tenants, 10, "t3 stopped")
        async with httpx.AsyncClient(base_url=deployment.url) as c:
            assert (await c.get("/t/t3/login")).status_code == 404
        done = await asyncio.to_thread(run, main, ["tenants", "remove", "t3", "--config", config])
        assert done.exit_code == 0 and "t3" not in (await asyncio.to_thread(
            run, main, ["tenants", "list", "--config", config])).output

        # t1's screen went on: still open, its next frames carry on from its seq, no snapshot
        frames = []
        while len(frames) < 3:
            frame = orjson.loads(await asyncio.wait_for(t1_screen.recv(), 10))
            if frame["type"] != "ping":
                frames.append(frame)
        assert all(f["type"] == "patch" for f in frames)


def test_tenants_add_reads_the_key_from_a_file_or_the_environment_never_the_command_line(
        tmp_path: Path) -> None:
    from click.testing import CliRunner

    from wallboard.cli import main

    config = tmp_path / "c.toml"
    config.write_text(f'[storage]\npath = "{tmp_path / "wb.db"}"\n')
    runner = CliRunner()
    refused = runner.invoke(main, ["tenants", "add", "acme", "--config", str(config)], env={})
    assert refused.exit_code != 0 and "WALLBOARD_TENANT_ACME_API_KEY" in refused.output
    key = tmp_path / "key"
    key.write_text("the-acme-key\n")
    added = runner.invoke(main, ["tenants", "add", "acme", "--name", "ACME", "--api-key-file", str(key),
                                 "--config", str(config)])
    assert added.exit_code == 0, added.output
    by_env = runner.invoke(main, ["tenants", "add", "beta-2", "--config", str(config)],
                           env={"WALLBOARD_TENANT_BETA_2_API_KEY": "the-beta-key"})
    assert by_env.exit_code == 0, by_env.output
    listed = runner.invoke(main, ["tenants", "list", "--config", str(config)])
    assert "acme" in listed.output and "beta-2" in listed.output
    assert "the-acme-key" not in listed.output + added.output and "the-beta-key" not in listed.output
    bad = runner.invoke(main, ["tenants", "add", "Bad_Id", "--config", str(config)], env={
        "WALLBOARD_TENANT_BAD_ID_API_KEY": "k"})
    assert bad.exit_code != 0 and "a-z, 0-9" in bad.output


async def test_a_tenant_disabled_on_the_pbx_shows_refused_is_left_alone_and_comes_back(
        deployment: Deployment) -> None:
    import time

    from wallboard.health import REFUSED_RETRY_S
    from wallboard.provider import tenant_row, tenant_state

    t2 = deployment.tenant("t2")
    secret = {"Authorization": "Bearer sim-secret-token"}
    async with httpx.AsyncClient(base_url=deployment.sim_url, headers=secret) as sim:
        assert (await sim.put("/v1/tenant/t2", json={"enable": False})).status_code == 200
        await until(lambda: tenant_row("t2", tenant_state(t2), 60, 0)["health"] == "refused", 20, "t2 shown as refused")
        health = t2.engine.live.health
        await until(lambda: health["agents"].failures >= 3, 20, "three refusals in a row")
        assert health["agents"].next_try >= time.monotonic() + REFUSED_RETRY_S / 2 - 5  # left alone
        assert tenant_row("t1", tenant_state(deployment.tenant("t1")), 60, 0)["health"] == "ok"  # the others go on
        assert (await sim.put("/v1/tenant/t2", json={"enable": True})).status_code == 200
    for source in health.sources.values():
        source.next_try = 0.0  # as if the minute had passed
    await until(lambda: tenant_row("t2", tenant_state(t2), 60, 0)["health"] == "ok", 20, "t2 back")


async def test_metrics_carry_each_tenants_floor_figures_under_its_label(deployment: Deployment) -> None:
    async with httpx.AsyncClient(base_url=deployment.url) as c:
        text = (await c.get("/metrics")).text
    for tenant in ("t1", "t2"):
        online = sum(1 for a in deployment.tenant(tenant).engine.live.agents.values() if a["state"] != "offline")
        shown = sum(float(m[1]) for m in re.finditer(
            rf'^wallboard_agents{{state="(?:idle|ringing|oncall)",tenant="{tenant}"}} (\S+)$', text, re.M))
        assert abs(shown - online) <= 2  # read a moment apart: live traffic moves
        assert f'wallboard_tenant_health{{state="ok",tenant="{tenant}"}} 1.0' in text
    assert not re.search(r'tenant="(?!t1"|t2")', text)  # bounded: only the tenants it runs


async def test_each_tenants_audit_log_holds_only_its_own_rows(deployment: Deployment) -> None:
    async with httpx.AsyncClient(base_url=deployment.url) as one, httpx.AsyncClient(base_url=deployment.url) as two:
        await login(one, "t1", "supervisor")
        await login(two, "t2", "supervisor")
        csrf = re.search(r'"csrf": "([^"]+)"', (await one.get("/t/t1/")).text)
        assert csrf
        answer = await one.post("/t/t1/api/calls/no-such-call-of-t1/listen", json={"ext": "1001"},
                                headers={"X-CSRF-Token": csrf[1]})
        assert answer.status_code == 200
        mine = (await one.get("/t/t1/api/audit")).json()["rows"]
        theirs = (await two.get("/t/t2/api/audit")).json()["rows"]
    assert [r["call_id"] for r in mine] == ["no-such-call-of-t1"] and mine[0]["tenant"] == "t1"
    assert theirs == []
