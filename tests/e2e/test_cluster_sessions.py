"""Two real `wallboard serve` processes on one Redis and one PostgreSQL, logging in against
the simulator: a session made on one is good on the other, and its logout on the first
closes its screen on the second within a few seconds (SPEC section 10)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import orjson
import websockets

from tests.servers import free_port, sim_server, wallboard_server
from tests.services import postgres_server, redis_server
from tests.test_role_matrix import _boot, _csrf_in

SECRET = "cluster-sessions-webhook-secret"
SESSION_SECRET = "cluster-sessions-secret-the-same-on-every-node"


async def test_a_login_on_one_process_holds_on_another_and_its_logout_closes_the_screen_there(
        tmp_path: Path) -> None:
    public = f"http://127.0.0.1:{free_port()}"  # no one answers there: only the nodes' config
    with redis_server() as redis, postgres_server() as pg, \
            sim_server(tmp_path, "--agents", "4", "--seed", "5", "--profile", "flat") as sim:
        config = {"cluster_redis_url": redis.url, "cluster_lease_seconds": "3", "storage_database_url": pg.url,
                  "webhook_secret": SECRET, "webhook_register": "false", "auth_mode": "pbx",
                  "server_session_secret": SESSION_SECRET, "server_public_url": public}
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        with wallboard_server(tmp_path / "a", sim.url, cluster_node_id="a", **config) as a, \
                wallboard_server(tmp_path / "b", sim.url, cluster_node_id="b", **config) as b:
            async with httpx.AsyncClient(timeout=10) as http:  # one browser; the balancer sends it anywhere
                token = _csrf_in((await http.get(a.url + "/login")).text)
                signed_in = await http.post(a.url + "/login", data={
                    "username": "supervisor@sim", "password": "supervisor", "csrf_token": token, "next": "/"})
                assert signed_in.status_code == 303, signed_in.text
                board = await http.get(b.url + "/")  # the other process knows the session
                assert board.status_code == 200
                csrf = _boot(board.text)["csrf"]
                cookie = "; ".join(f"{k}={v}" for k, v in http.cookies.items())
                url = b.url.replace("http://", "ws://") + "/ws"
                async with websockets.connect(url, additional_headers={"Cookie": cookie}) as screen:
                    first = orjson.loads(await asyncio.wait_for(screen.recv(), 10))
                    assert first["type"] == "snapshot"
                    out = await http.post(a.url + "/logout", data={"csrf_token": csrf})
                    assert out.status_code == 303
                    started = time.monotonic()
                    async with asyncio.timeout(5):
                        with contextlib.suppress(websockets.ConnectionClosedError):
                            async for _ in screen:
                                pass  # pings and patches until b closes it
                    assert screen.close_code == 4000  # hub.CLOSE_LOGGED_OUT
                    print(f"logout on process a -> screen on process b closed in {time.monotonic() - started:.2f} s")
                assert (await http.get(b.url + "/api/state")).status_code == 401
