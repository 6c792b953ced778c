"""The TV, readable from across the room (issue 16 part 5): at 720p, 1080p and 4K with
10, 40 and 200 agents the tiles fill the screen, no name is cut, the calls panel shows
number, agent and state whole, the supervisors' phone is no tile; the screenshots in
docs/screenshots/ come from here. And the TV that needs no one (issue 17 part 5): night
mode, the shift against burn-in, the reload after an upgrade."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import SCREENSHOTS
from tests.e2e.test_live_board import move, script_call
from tests.servers import Server, sim_server, wait_until, wallboard_server

pytestmark = pytest.mark.browser
KIOSK = "tv-token-for-the-tv-tests"
SIZES = [(1280, 720), (1920, 1080), (3840, 2160)]

# What a displayed tile or call row must not cut: every text that is on screen.
UNCUT = """() => {
  const cut = [];
  for (const e of document.querySelectorAll(
      '[data-agent]:not([hidden]) .agent-name, [data-agent]:not([hidden]) .agent-ext,'
      + ' [data-agent]:not([hidden]) .state-word, [data-call]:not([hidden]) .c-from,'
      + ' [data-call]:not([hidden]) .c-agent, [data-call]:not([hidden]) .c-state')) {
    if (!e.getClientRects().length) continue;
    if (e.scrollWidth > e.clientWidth || e.scrollHeight > e.clientHeight + 1) {
      cut.push(`${e.className}: ${e.textContent} (${e.scrollWidth} > ${e.clientWidth})`);
    }
  }
  const grid = document.querySelector('[data-agents]').getBoundingClientRect();
  for (const t of document.querySelectorAll('[data-agent]:not([hidden])')) {
    const b = t.getBoundingClientRect();
    if (b.bottom > grid.bottom + 1 || b.right > grid.right + 1) cut.push(`tile ${t.dataset.agent} clipped`);
  }
  return cut;
}"""


@pytest.fixture(scope="module", params=[10, 40, 200], ids=lambda n: f"{n}-agents")
def floor(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Server,
                                                                                                       Server]]:
    n: int = request.param
    tmp = tmp_path_factory.mktemp(f"tv{n}")
    with sim_server(tmp, "--agents", str(n), "--seed", "7", "--rate", "0") as sim, \
            wallboard_server(tmp, sim.url, auth_mode="pbx", auth_kiosk_tokens=KIOSK,
                             display_hide_extensions="999") as wb:
        for ext in range(1001, 1001 + n):
            assert httpx.post(f"{sim.url}/_sim/agents/{ext}/login").status_code == 200
        legs = []
        for i, ext in enumerate(("1001", "1002", "1003", "1004")):
            leg = script_call(sim, exts=[ext], number=f"09{i}8765432")["legs"][0]["call_id"]
            if i % 2:
                move(sim, leg, "answer")
            legs.append(leg)
        wait_until(lambda: httpx.get(wb.url + "/readyz").status_code == 200, 20, what="readyz")
        yield n, sim, wb
        for leg in legs:
            httpx.post(f"{sim.url}/_sim/calls/{leg}/hangup")


@pytest.mark.parametrize(("width", "height"), SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_tiles_fill_the_tv_and_no_name_is_cut(floor: tuple[int, Server, Server], browser: Any,
                                              width: int, height: int) -> None:
    n, _, wb = floor
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    try:
        page.goto(f"{wb.url}/kiosk?token={KIOSK}")
        page.wait_for_selector('[data-conn="live"]')
        wait_until(lambda: page.locator("[data-agent]").count() == n + 1, 15, what=f"{n} agents and 999")
        page.wait_for_selector("[data-call]:not([hidden])")
        assert page.locator('[data-agent="999"]').is_hidden(), "the supervisors' phone is no tile"

        def settled() -> bool:
            shown = page.locator("[data-agent]:not([hidden])").count()
            more = page.locator("[data-agents-more]")
            hidden = n - shown
            if hidden == 0:
                return shown > 0 and more.is_hidden()
            return more.is_visible() and str(hidden) in (more.text_content() or "")

        wait_until(settled, 10, what="the tiles displayed, and the others counted")
        page.screenshot(path=str(SCREENSHOTS / f"tv-{width}x{height}-{n}-agents.png"))
        cut = page.evaluate(UNCUT)
        assert not cut, cut
        shown = page.locator("[data-agent]:not([hidden])").count()
        font = page.evaluate("parseFloat(getComputedStyle(document.querySelector("
                             "'[data-agent]:not([hidden]) .agent-name')).fontSize)")
        print(f"\nTV {width}x{height}, {n} agents: {shown} tiles shown, names {font:.0f} px")
        if n <= 10 or (n <= 40 and height >= 1080):
            assert shown == n, f"{n} agents do not all fit at {width}x{height}"
        if (width, height) == (1920, 1080) and n <= 10:
            # ~30 px is the aim (readable at 5 m); the KPIs, calls and teams panels share the screen
            assert font >= 24, f"names of {font}px on a 1080p TV with {n} agents"
        # the grid is filled: the tiles take most of its height when they all fit
        used = page.evaluate("""() => {
          const g = document.querySelector('[data-agents]').getBoundingClientRect();
          const tiles = [...document.querySelectorAll('[data-agent]:not([hidden])')];
          return (Math.max(...tiles.map(t => t.getBoundingClientRect().bottom)) - g.top) / g.height; }""")
        assert used > 0.6, f"the tiles use {used:.0%} of the grid's height"
    finally:
        context.close()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    tmp = tmp_path_factory.mktemp("tv-night")
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    now = datetime.now(zone)
    night = f"{(now - timedelta(hours=1)):%H:00}-{(now + timedelta(hours=2)):%H:00}"
    with sim_server(tmp, "--agents", "6", "--seed", "3", "--rate", "0") as sim, \
            wallboard_server(tmp, sim.url, auth_mode="pbx", auth_kiosk_tokens=KIOSK, display_night=night,
                             display_shift_minutes="1") as wb:
        wait_until(lambda: httpx.get(wb.url + "/readyz").status_code == 200, 20, what="readyz")
        yield sim, wb


def test_at_night_the_tv_is_a_dim_clock_and_the_callers_waiting(small: tuple[Server, Server], browser: Any) -> None:
    _, wb = small
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    try:
        page.goto(f"{wb.url}/kiosk?token={KIOSK}")
        page.wait_for_selector('html[data-night="true"] [data-conn="live"]', state="attached")
        assert page.locator("[data-clock]").is_visible()
        assert page.locator('[data-kpi="waiting"]').is_visible()
        for hidden in ("[data-agents]", '[data-kpi="service_level"]', "[data-calls]", '[data-kpi="total"]'):
            assert page.locator(hidden).is_hidden(), hidden
        page.screenshot(path=str(SCREENSHOTS / "tv-night.png"))
    finally:
        context.close()


def test_the_picture_moves_a_few_pixels_every_few_minutes(small: tuple[Server, Server], browser: Any) -> None:
    _, wb = small
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        page.clock.install()
        page.goto(f"{wb.url}/kiosk?token={KIOSK}")
        page.wait_for_selector("[data-agent]", state="attached")
        seen = set()
        for _ in range(9):
            page.clock.run_for(61_000)
            shift = page.evaluate("getComputedStyle(document.body).transform")
            seen.add(shift)
            xy = page.evaluate("[getComputedStyle(document.documentElement).getPropertyValue('--shift-x'),"
                               " getComputedStyle(document.documentElement).getPropertyValue('--shift-y')]")
            assert all(abs(float(v.strip().removesuffix("px") or 0)) <= 4 for v in xy), xy
        assert len(seen) >= 5, seen
    finally:
        context.close()


def test_a_tv_reloads_itself_when_the_server_is_upgraded(small: tuple[Server, Server], browser: Any,
                                                         tmp_path: Path) -> None:
    """The TV's server stops and another build comes up at the same address: the page reloads."""
    sim, _ = small
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    try:
        with wallboard_server(tmp_path, sim.url, auth_mode="pbx", auth_kiosk_tokens=KIOSK, build="release-1",
                              webhook_register="false") as old:
            port = int(old.url.rsplit(":", 1)[1])
            page.goto(f"{old.url}/kiosk?token={KIOSK}")
            page.wait_for_selector('.conn[data-conn="live"]')
            assert boot_version(page) == "release-1"
        with wallboard_server(tmp_path, sim.url, port=port, auth_mode="pbx", auth_kiosk_tokens=KIOSK,
                              build="release-2", webhook_register="false"):
            wait_until(lambda: boot_version(page) == "release-2", 30, what="the page from the new build")
            page.wait_for_selector('.conn[data-conn="live"]')
    finally:
        context.close()


def boot_version(page: Any) -> str | None:
    try:
        return str(page.evaluate("JSON.parse(document.getElementById('boot').textContent).version"))
    except Exception:  # between two pages
        return None


def test_supervisors_make_and_revoke_tv_tokens_and_a_revoked_tv_is_cut_off_within_a_second(
        small: tuple[Server, Server], browser: Any) -> None:
    sim, wb = small
    assert httpx.post(f"{sim.url}/_sim/agents/999/login").status_code == 200
    boss = browser.new_context(viewport={"width": 1440, "height": 900})
    tv = browser.new_context(viewport={"width": 1280, "height": 720})
    old_tv = browser.new_context(viewport={"width": 1280, "height": 720})
    try:
        page = boss.new_page()
        login(page, wb)
        # by keyboard: open the panel, name the TV, make its token
        panel = page.locator("[data-kiosk-tokens] > summary")
        panel.focus()
        page.keyboard.press("Enter")
        page.locator('[data-form="kiosk-token"] input[name="name"]').focus()
        page.keyboard.type("TV tầng 3")
        page.keyboard.press("Enter")
        url = page.locator("[data-token-url]")
        wait_until(lambda: "/kiosk?token=" in (url.input_value() or ""), 10, what="the new token's address")
        address = url.input_value()
        token = address.split("token=", 1)[1]
        row = page.locator("[data-token]", has_text="TV tầng 3")
        assert row.count() == 1

        screen = tv.new_page()
        screen.goto(address)
        screen.wait_for_selector('[data-conn="live"]')
        other = old_tv.new_page()  # a config token keeps working
        other.goto(f"{wb.url}/kiosk?token={KIOSK}")
        other.wait_for_selector('[data-conn="live"]')

        # the list says when and from where the TV last used it
        def listed() -> dict[str, Any]:
            rows = page.evaluate("fetch('/api/kiosk-tokens').then(r => r.json())")["tokens"]
            return next(r for r in rows if r["name"] == "TV tầng 3")

        wait_until(lambda: listed()["last_seen_ip"] == "127.0.0.1", 10, what="the token's last use")
        page.locator("[data-kiosk-tokens] > summary").click()  # closed, and opened again: read afresh
        page.locator("[data-kiosk-tokens] > summary").click()
        wait_until(lambda: "127.0.0.1" in (row.text_content() or ""), 10, what="the address in the list")

        page.once("dialog", lambda d: d.accept())
        page.locator(f'[data-token="{listed()["id"]}"] [data-revoke]').click()
        screen.wait_for_selector('[data-conn]:not([data-conn="live"])', timeout=1_000)
        wait_until(lambda: listed()["revoked_at"] is not None, 5, what="revoked in the list")
        assert httpx.get(f"{wb.url}/api/state", params={"token": token}).status_code == 401
        assert httpx.get(f"{wb.url}/api/state", params={"token": KIOSK}).status_code == 200
        assert other.locator('.conn[data-conn="live"]').count() == 1
    finally:
        for context in (boss, tv, old_tv):
            context.close()


def login(page: Any, wb: Server) -> None:
    page.goto(f"{wb.url}/login?lang=vi")
    page.fill('input[name="username"]', "supervisor@sim")
    page.fill('input[name="password"]', "supervisor")
    page.fill('input[name="ext"]', "999")
    page.click('button[type="submit"]')
    page.wait_for_selector("[data-agent]", state="attached")
