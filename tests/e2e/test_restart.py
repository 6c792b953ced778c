"""A restart under traffic, for real: SIGTERM to `wallboard serve` while the
simulator places calls, a screen is connected and a webhook is half-sent; then
the same command again on the same port and storage."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.factories import webhook_body
from tests.servers import Server, free_port, sim_server, unread_by_server, until, wait_until, wallboard_server
from wallboard.pbx.client import PbxClient

SECRET = "restart-test-webhook-secret"
EVENTS = ("ringing", "answered", "hangup", "cdr")


def ws_url(wb: Server) -> str:
    return wb.url.replace("http://", "ws://") + "/ws"


async def first_snapshot(ws: ClientConnection) -> dict[str, Any]:
    while True:
        msg = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if msg["type"] == "snapshot":
            return dict(msg)


async def close_code(ws: ClientConnection) -> tuple[int, str]:
    """Read until the server closes; the code and reason it sent."""
    async with asyncio.timeout(10):
        async for _ in ws:
            pass
    assert ws.protocol.close_rcvd is not None, "closed without a close frame"
    return ws.protocol.close_rcvd.code, ws.protocol.close_rcvd.reason


async def half_sent_webhook(wb: Server, body: bytes, sent_half: asyncio.Event,
                            go_on: asyncio.Event) -> httpx.Response:
    async def chunks() -> AsyncIterator[bytes]:
        yield body[: len(body) // 2]
        sent_half.set()
        await go_on.wait()
        yield body[len(body) // 2:]

    async with httpx.AsyncClient(timeout=10) as http:
        return await http.post(f"{wb.url}/hooks/pbx/{SECRET}", content=chunks(),
                               headers={"content-type": "application/json"})


async def our_registrations(sim: Server, wb: Server) -> list[str]:
    async with httpx.AsyncClient() as http:
        hooks = await PbxClient(sim.url, "sim-api-key", http=http).list_events()
    mine = f"{wb.url}/hooks/pbx/{SECRET}"
    return sorted(h.event_name for h in hooks if h.callback_url == mine)


async def get_json(url: str) -> Any:
    async with httpx.AsyncClient(timeout=5) as http:
        return (await http.get(url)).json()


async def test_a_restart_under_traffic(tmp_path: Path) -> None:
    port = free_port()
    overrides = {"auth_mode": "none", "webhook_secret": SECRET}
    with sim_server(tmp_path, "--agents", "6", "--seed", "9", "--rate", "90") as sim:
        with wallboard_server(tmp_path, sim.url, port=port, **overrides) as old:
            # ready (a first poll in) and registered (a task of its own, done a little later)
            await asyncio.to_thread(wait_until, lambda: httpx.get(old.url + "/readyz").json().get("webhooks"),
                                    20, what="readyz with the webhooks registered")
            assert await our_registrations(sim, old) == sorted(EVENTS)
            # an attempt without a CSRF token is refused, and written down
            async with httpx.AsyncClient() as http:
                refused = await http.post(old.url + "/api/calls/c-1/listen", json={})
            assert refused.status_code == 403
            before = (await get_json(old.url + "/api/audit"))["rows"]
            assert before

            async with connect(ws_url(old)) as screen:
                epoch = (await first_snapshot(screen))["state"]["epoch"]
                sent_half, go_on = asyncio.Event(), asyncio.Event()
                body = orjson.dumps(webhook_body("ringing", "restart-call-1"))
                webhook = asyncio.create_task(half_sent_webhook(old, body, sent_half, go_on))
                await asyncio.wait_for(sent_half.wait(), 5)
                # the server has read the headers and half the body: the screen's connection
                # and the webhook's are open, and the kernel holds nothing unread for either
                await until(lambda: (q := unread_by_server(port)) and len(q) >= 2 and not any(q), 5,
                            "the server to read the half-sent webhook")

                old.proc.send_signal(signal.SIGTERM)
                code = await close_code(screen)
                go_on.set()
                answer = await webhook
            exit_code = await asyncio.to_thread(old.proc.wait, 15)
            log = old.log()
        assert code == (1001, "server restarting")
        assert answer.status_code == 200, answer.text  # the webhook in flight was finished
        # uvicorn re-raises the signal once it has shut down cleanly (systemd counts
        # death by SIGTERM as a clean stop)
        assert exit_code in (0, -signal.SIGTERM)
        assert "Application shutdown complete." in log
        assert "Traceback" not in log and " ERROR " not in log, log

        with wallboard_server(tmp_path, sim.url, port=port, **overrides) as new:
            async with connect(ws_url(new)) as screen:
                snapshot = await first_snapshot(screen)
            assert snapshot["state"]["epoch"] != epoch
            await asyncio.to_thread(wait_until, lambda: httpx.get(new.url + "/readyz").json().get("webhooks"),
                                    20, what="readyz with the webhooks registered after restart")
            assert (await get_json(new.url + "/readyz")).get("webhooks") == dict.fromkeys(EVENTS, "kept")
            assert await our_registrations(sim, new) == sorted(EVENTS)
            after = (await get_json(new.url + "/api/audit"))["rows"]
            assert after[-len(before):] == before  # newest first: the old rows, intact, at the end


@pytest.mark.browser
def test_the_board_reconnects_itself_after_a_restart(tmp_path: Path, page: Any) -> None:
    """A board told 'going away' shows it, comes back on its own and resyncs."""
    port = free_port()
    with sim_server(tmp_path, "--agents", "4", "--seed", "2", "--rate", "0") as sim:
        with wallboard_server(tmp_path, sim.url, port=port, auth_mode="none") as old:
            page.goto(old.url + "/")
            page.wait_for_selector('[data-agent="1001"]')
            page.evaluate("window.__noReload = 7")
            old.proc.send_signal(signal.SIGTERM)
            page.wait_for_selector('[data-conn="reconnecting"]', timeout=5000)
            old.proc.wait(15)
        with wallboard_server(tmp_path, sim.url, port=port, auth_mode="none") as new:
            wait_until(lambda: httpx.get(new.url + "/readyz").status_code == 200, 20, what="readyz")
            httpx.post(sim.url + "/_sim/agents/1001/logout")
            page.wait_for_selector('[data-agent="1001"][data-state="offline"]', timeout=20_000)
            page.wait_for_selector('[data-conn]:not([data-conn="reconnecting"])', timeout=20_000)
    assert page.evaluate("window.__noReload") == 7  # reconnected, not reloaded
