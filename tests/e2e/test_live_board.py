"""The whole path, for real: the simulator and the wallboard as separate servers
on loopback ports, a scripted call in the simulator, and the board in headless
Chromium changing without a reload."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SCREENSHOTS
from tests.servers import Server, sim_server, wait_until, wallboard_server

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    tmp = tmp_path_factory.mktemp("live")
    with sim_server(tmp, "--agents", "4", "--seed", "7", "--rate", "0") as sim, \
            wallboard_server(tmp, sim.url, auth_mode="none") as wb:
        wait_until(lambda: httpx.get(wb.url + "/readyz").status_code == 200, 20, what="readyz")
        yield sim, wb


def script_call(sim: Server, **body: Any) -> dict[str, Any]:
    answer = httpx.post(sim.url + "/_sim/calls", json={
        "direction": "inbound", "number": "0899123456", "hotline": "19001919",
        "answer_by": None, "ring_seconds": None, "talk_seconds": None, **body})
    assert answer.status_code == 200, answer.text
    return answer.json()


def move(sim: Server, call_id: str, how: str) -> None:
    assert httpx.post(f"{sim.url}/_sim/calls/{call_id}/{how}").status_code == 200


def test_a_call_turns_the_tile_ringing_then_oncall_without_reload(servers: tuple[Server, Server],
                                                                   page: Any) -> None:
    sim, wb = servers
    for ext in ("1001", "1002"):
        assert httpx.post(f"{sim.url}/_sim/agents/{ext}/login").status_code == 200
    page.goto(wb.url + "/")
    page.wait_for_selector('[data-agent="1001"][data-state="idle"]')
    page.evaluate("window.__noReload = 42")

    legs = script_call(sim, exts=["1001", "1002"])["legs"]
    leg = next(leg["call_id"] for leg in legs if leg["ext"] == "1001")
    page.wait_for_selector('[data-agent="1001"][data-state="ringing"]')
    page.wait_for_selector('[data-agent="1002"][data-state="ringing"]')
    page.wait_for_selector(f'[data-call="{leg}"]')
    # locator waits, not wait_for_function: the page's CSP forbids the eval that polling uses
    page.locator('[data-kpi="waiting"]', has_text=re.compile(r"^\s*1\s*$")).wait_for()

    move(sim, leg, "answer")
    page.wait_for_selector('[data-agent="1001"][data-state="oncall"]')
    page.wait_for_selector('[data-agent="1002"][data-state="idle"]')
    assert page.evaluate("window.__noReload") == 42
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "board-tab.png"))

    move(sim, leg, "hangup")
    page.wait_for_selector('[data-agent="1001"][data-state="idle"]')
    page.wait_for_selector(f'[data-call="{leg}"]', state="detached")
    assert page.evaluate("window.__noReload") == 42
    state = httpx.get(wb.url + "/api/state").json()
    assert {a["ext"]: a["state"] for a in state["agents"]}["1001"] == "idle"
    # the call's CDR (a webhook) gives the agent today's tally, shown in the line the call took
    today = page.locator('[data-agent="1001"] [data-today]', has_text=re.compile(r"^1 cuộc · 0 phút$"))
    today.wait_for()
    assert (today.get_attribute("title") or "").startswith("Hôm nay: 1 cuộc gọi đã kết nối")
    assert page.locator('[data-agent="1002"] [data-today]').text_content() == "0 cuộc · 0 phút"
    page.goto(wb.url + "/?lang=en")
    page.locator('[data-agent="1001"] [data-today]', has_text=re.compile(r"^1 call · 0 min$")).wait_for()
    assert page.locator('[data-agent="1002"] [data-today]').text_content() == "0 calls · 0 min"


def test_screenshot_paths_are_inside_the_repo() -> None:
    assert Path(SCREENSHOTS).parts[-2:] == ("docs", "screenshots")
