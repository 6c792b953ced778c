"""The board's three layouts and two languages in Chromium, matched against
/api/state; PBX strings rendered as text; the screenshots the README shows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SCREENSHOTS
from tests.e2e.test_live_board import move, script_call
from tests.servers import Server, sim_server, wait_until, wallboard_server

pytestmark = pytest.mark.browser
KIOSK = "tv-token-for-tests"
SECRET = "hook-secret-for-layout-tests"
XSS = '<img src=x onerror="window.__pwned=1">"\'&<script>window.__pwned=2</script>'


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    tmp = tmp_path_factory.mktemp("layouts")
    with sim_server(tmp, "--agents", "12", "--seed", "5", "--rate", "0") as sim, \
            wallboard_server(tmp, sim.url, auth_mode="none", auth_kiosk_tokens=KIOSK,
                             webhook_secret=SECRET) as wb:
        for ext in range(1001, 1013):
            assert httpx.post(f"{sim.url}/_sim/agents/{ext}/logout").status_code == 200
        for ext in range(1001, 1010):
            assert httpx.post(f"{sim.url}/_sim/agents/{ext}/login").status_code == 200
        # a scene for the screenshots: one talking, a ring group ringing two agents
        talking = script_call(sim, exts=["1005"], number="0987654321")["legs"][0]["call_id"]
        move(sim, talking, "answer")
        script_call(sim, exts=["1006", "1007"], number="0933111222")
        wait_until(lambda: httpx.get(wb.url + "/readyz").status_code == 200, 20, what="readyz")
        yield sim, wb


def board_matches_state(page: Any, wb: Server, query: str = "") -> None:
    """Every agent tile shows the state /api/state gives (allowing a change in between)."""
    def same() -> bool:
        state = httpx.get(f"{wb.url}/api/state{query}").json()
        shown = page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('[data-agent]')]"
            ".map(t => [t.dataset.agent, t.dataset.state]))")
        return shown == {a["ext"]: a["state"] for a in state["agents"]}

    wait_until(same, 15, interval=0.3, what="tiles to match /api/state")


def kpi(page: Any, name: str) -> str:
    return str(page.locator(f'[data-kpi="{name}"]').text_content()).strip()


def test_tv_kiosk_is_read_only_masked_dark_and_large(servers: tuple[Server, Server], browser: Any) -> None:
    sim, wb = servers
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    page.goto(f"{wb.url}/kiosk?token={KIOSK}")
    page.wait_for_selector('[data-conn="live"]')
    board_matches_state(page, wb, f"?token={KIOSK}")
    assert page.locator("html").get_attribute("data-layout") == "kiosk"
    assert page.locator("html").get_attribute("lang") == "vi"
    assert page.locator("[data-action]").count() == 0
    call_id = script_call(sim, exts=["1001"], number="0912345678")["legs"][0]["call_id"]
    page.wait_for_selector('[data-agent="1001"][data-state="ringing"]')
    assert "0912***678" in page.locator('[data-agent="1001"]').text_content()
    assert "0912345678" not in page.content()
    state = httpx.get(f"{wb.url}/api/state?token={KIOSK}").json()
    total = state["status"]["total"]
    wait_until(lambda: int(kpi(page, "total").replace(".", "").replace(",", "") or -1) >= total, 10,
               what="the total KPI")
    size = page.evaluate("parseFloat(getComputedStyle(document.querySelector('[data-kpi=\"waiting\"]')).fontSize)")
    assert size >= 40, f"waiting KPI is {size}px on a 1080p TV"
    page.screenshot(path=str(SCREENSHOTS / "board-tv.png"))
    move(sim, call_id, "hangup")
    context.close()


def test_tv_says_how_many_calls_it_has_no_room_for_and_shows_waiting_callers_first(
        servers: tuple[Server, Server], browser: Any) -> None:
    sim, wb = servers
    context = browser.new_context(viewport={"width": 1366, "height": 768})  # a small TV: 9 calls do not fit
    page = context.new_page()
    page.goto(f"{wb.url}/kiosk?token={KIOSK}")
    page.wait_for_selector('[data-conn="live"]')
    talking = []
    for ext in ("1001", "1002", "1003", "1004", "1008"):
        leg = script_call(sim, exts=[ext], number=f"09{ext}0000")["legs"][0]["call_id"]
        move(sim, leg, "answer")
        talking.append(leg)
    ringing = script_call(sim, exts=["1009"], number="0911222333")["legs"][0]["call_id"]
    try:
        page.wait_for_selector(f'[data-call="{ringing}"]')
        rows = page.locator("[data-call]")
        more = page.locator("[data-calls-more]")
        wait_until(lambda: rows.count() == len(httpx.get(f"{wb.url}/api/state?token={KIOSK}").json()["calls"]),
                   10, what="every call in the list")

        def fully_shown() -> int:
            return int(page.evaluate(
                "(() => { const box = document.querySelector('.calls-panel').getBoundingClientRect();"
                " return [...document.querySelectorAll('[data-call]')].filter(r => {"
                " const b = r.getBoundingClientRect(); return b.top >= box.top && b.bottom <= box.bottom + 1;"
                " }).length; })()"))

        assert rows.count() - fully_shown() > 0, "the scene must not fit: add calls"
        # measured again each time: the panel may still be settling (fonts, the last rows)
        wait_until(lambda: more.is_visible()
                   and more.text_content() == f"+{rows.count() - fully_shown()} cuộc gọi khác", 10,
                   what=f"'+N cuộc gọi khác' for the rows cut off (shows {more.text_content()!r})")
        # Waiting callers are never the ones cut off: ringing rows come first.
        first = page.evaluate(
            "(() => { const rows = [...document.querySelectorAll('[data-call]:not([hidden])')];"
            " rows.sort((a, b) => a.getBoundingClientRect().top - b.getBoundingClientRect().top);"
            " return rows[0].dataset.state; })()")
        assert first == "ringing"
    finally:
        for leg in [*talking, ringing]:
            move(sim, leg, "hangup")
        context.close()


def test_a_tile_warning_of_a_long_ring_shows_the_callers_whole_number(
        servers: tuple[Server, Server], browser: Any, tmp_path: Path) -> None:
    """The 'too long' badge shares the caller's line: the direction word gives way."""
    sim, _ = servers
    with wallboard_server(tmp_path, sim.url, auth_mode="none", display_ringing_warn_seconds="1",
                          webhook_register="false") as wb:
        context = browser.new_context(viewport={"width": 1920, "height": 1080})
        page = context.new_page()
        page.goto(f"{wb.url}/?kiosk=1")
        page.wait_for_selector('[data-conn="live"]')
        leg = script_call(sim, exts=["1001"], number="0912345678")["legs"][0]["call_id"]
        try:
            tile = page.locator('[data-agent="1001"][data-warn="true"]')
            tile.wait_for(timeout=15_000)
            number = tile.locator("[data-peer]")
            assert number.text_content() == "0912345678"
            assert number.evaluate("e => e.scrollWidth <= e.clientWidth"), "the number is cut"
            assert tile.locator(".warn-badge").is_visible() and tile.locator(".dir-word").is_hidden()
        finally:
            move(sim, leg, "hangup")
            context.close()


def test_phone_is_one_column_at_360px_in_english(servers: tuple[Server, Server], browser: Any) -> None:
    _, wb = servers
    context = browser.new_context(viewport={"width": 360, "height": 780}, is_mobile=True,
                                  device_scale_factor=2)
    page = context.new_page()
    page.goto(f"{wb.url}/?lang=en")
    page.wait_for_selector('[data-conn="live"]')
    assert page.locator("html").get_attribute("lang") == "en"
    board_matches_state(page, wb)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"horizontal scroll of {overflow}px at 360px"
    lefts = page.evaluate("[...document.querySelectorAll('[data-agent]:not([hidden])')].slice(0, 4)"
                          ".map(t => Math.round(t.getBoundingClientRect().left))")
    assert len(set(lefts)) == 1, f"tiles not in one column: {lefts}"
    page.screenshot(path=str(SCREENSHOTS / "board-phone.png"), full_page=False)
    context.close()


def test_pbx_strings_render_as_text_never_markup(servers: tuple[Server, Server], page: Any) -> None:
    # The call is the simulator's, so its webhooks and the calls poll agree on it: a
    # webhook-only call would be (rightly) dropped by the next poll, under the test.
    sim, wb = servers
    page.goto(f"{wb.url}/?lang=en")
    page.wait_for_selector('[data-conn="live"]')
    call_id = script_call(sim, exts=["1002"], number=XSS, hotline=XSS)["legs"][0]["call_id"]
    row = page.locator(f'[data-call="{call_id}"]')
    wait_until(lambda: XSS in (row.text_content(timeout=1000) or ""), 15, interval=0.2,
               what="the caller's number shown as text")
    assert page.evaluate("window.__pwned") is None
    assert row.locator("img, script").count() == 0
    move(sim, call_id, "hangup")
    row.wait_for(state="detached")
