"""axe-core on every page and layout, in Chromium: no serious or critical violation,
and each moderate or minor one either fixed or listed in KNOWN with its reason.

axe-core comes from the npm registry into the test run only (`tests/axe.py` finds or
fetches it), never from the wallboard: the page keeps its own Content-Security-Policy
and the test harness injects axe the way a harness may (a script the browser runs in
every new document, `Page.addScriptToEvaluateOnNewDocument`).

Adding a page is one line in PAGES."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.axe import axe_source
from tests.e2e.test_live_board import move, script_call
from tests.servers import Server, sim_server, wait_until, wallboard_server

pytestmark = pytest.mark.browser

KIOSK = "tv-token-for-the-axe-tests"
PROVIDER = "provider-token-for-the-axe-tests"


@dataclass(frozen=True)
class Page:
    name: str
    path: str  # {kiosk} and {provider} are filled in
    width: int = 1440
    height: int = 900
    theme: str = "dark"  # the browser's prefers-color-scheme
    login: bool = False  # as a supervisor (the audit page and the action buttons)
    ready: str = '[data-conn="live"]'
    mobile: bool = False
    server: str = "board"  # the fixture that serves it: "board" or "tenants" (the provider's view)


PAGES = [
    Page("board tab, light", "/?lang=vi", theme="light", login=True),
    Page("board tab, dark", "/?lang=vi", theme="dark", login=True),
    Page("TV", "/kiosk?token={kiosk}", 1920, 1080),
    Page("TV 720p", "/kiosk?token={kiosk}&lang=en", 1280, 720),
    Page("phone, vi", "/?lang=vi", 360, 780, theme="light", login=True, mobile=True),
    Page("phone, en", "/?lang=en", 360, 780, theme="dark", login=True, mobile=True),
    Page("login", "/login?lang=vi", ready="form", theme="light"),
    Page("login, dark", "/login?lang=en", ready="form", theme="dark"),
    Page("audit", "/audit?lang=vi", ready="table, .empty", theme="light", login=True),
    Page("provider", "/provider?token={provider}&lang=en", theme="light", server="tenants"),
    Page("provider, dark", "/provider?token={provider}&lang=vi", server="tenants"),
]

# Moderate or minor findings left as they are, by rule id, with the reason.
KNOWN: dict[str, str] = {}

BLOCKING = {"serious", "critical"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    tmp = tmp_path_factory.mktemp("axe")
    with sim_server(tmp, "--agents", "12", "--seed", "5", "--rate", "0") as sim, \
            wallboard_server(tmp, sim.url, auth_mode="pbx", auth_kiosk_tokens=KIOSK) as wb:
        for ext in ("1010", "1011", "1012"):
            assert httpx.post(f"{sim.url}/_sim/agents/{ext}/logout").status_code == 200
        for ext in ("1001", "1002", "1003", "1005", "1006", "1007", "999"):
            assert httpx.post(f"{sim.url}/_sim/agents/{ext}/login").status_code == 200
        # every state on screen: talking, ringing (a ring group), idle, offline
        talking = script_call(sim, exts=["1005"], number="0987654321")["legs"][0]["call_id"]
        move(sim, talking, "answer")
        script_call(sim, exts=["1006", "1007"], number="0933111222")
        wait_until(lambda: httpx.get(wb.url + "/readyz").status_code == 200, 20, what="readyz")
        yield sim, wb


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("axe-tenants")
    config = tmp / "tenants.toml"
    config.write_text(f'[provider]\ntokens = ["{PROVIDER}"]\n[auth]\nmode = "pbx"\n'
                      '[[tenants]]\nid = "t1"\nname = "Call center t1"\napi_key = "sim-api-key-t1"\n')
    with sim_server(tmp, "--tenants", "1", "--agents", "5", "--seed", "11", "--rate", "20") as sim, \
            wallboard_server(tmp, sim.url, config=str(config)) as wb:
        yield wb


def login(page: Any, wb: Server) -> None:
    page.goto(f"{wb.url}/login?lang=vi")
    page.fill('input[name="username"]', "supervisor@sim")
    page.fill('input[name="password"]', "supervisor")
    page.fill('input[name="ext"]', "999")
    page.click('button[type="submit"]')
    page.wait_for_selector("[data-agent]:not([hidden])")


def run_axe(browser: Any, wb: Server, spec: Page) -> list[dict[str, Any]]:
    context = browser.new_context(viewport={"width": spec.width, "height": spec.height}, locale="vi-VN",
                                  color_scheme=spec.theme, is_mobile=spec.mobile,
                                  reduced_motion="reduce")
    context.add_init_script(script=axe_source())
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        if spec.login:
            login(page, wb)
        page.goto(wb.url + spec.path.format(kiosk=KIOSK, provider=PROVIDER))
        page.wait_for_selector(spec.ready)
        if "[data-conn" in spec.ready:
            page.wait_for_selector("[data-agent]:not([hidden]), [data-tenant]")
        found: list[dict[str, Any]] = page.evaluate(
            """async () => {
                 const r = await axe.run(document, { resultTypes: ['violations'] });
                 return r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.length,
                   targets: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: ' + n.failureSummary) }));
               }""")
        return found
    finally:
        context.close()


@pytest.mark.parametrize("spec", PAGES, ids=[p.name for p in PAGES])
def test_no_serious_violation_and_every_other_one_explained(request: pytest.FixtureRequest, browser: Any,
                                                            spec: Page) -> None:
    wb = request.getfixturevalue("tenants") if spec.server == "tenants" else request.getfixturevalue("servers")[1]
    violations = run_axe(browser, wb, spec)
    print(f"\naxe {spec.name}: " + (", ".join(f"{v['id']} ({v['impact']}, {v['nodes']})" for v in violations)
                                    or "no violations"))
    blocking = [v for v in violations if v["impact"] in BLOCKING]
    assert not blocking, json.dumps(blocking, indent=1, ensure_ascii=False)
    unexplained = [v for v in violations if v["id"] not in KNOWN]
    assert not unexplained, json.dumps(unexplained, indent=1, ensure_ascii=False)


def test_axe_is_the_npm_package_and_not_served(servers: tuple[Server, Server]) -> None:
    _, wb = servers
    assert "axe.run" in axe_source() or "axe" in axe_source()[:2000]
    for path in ("/static/js/axe.min.js", "/static/axe.min.js"):
        assert httpx.get(wb.url + path).status_code == 404
    assert Path(__file__).resolve().parents[2].joinpath("static", "js", "axe.min.js").exists() is False
