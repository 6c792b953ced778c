"""The provider's view in Chromium (SPEC section 10): a row per tenant, live, the tenant
whose key the PBX refuses first, and not one phone number, name or call id on the page."""

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

PROVIDER_TOKEN = "provider-token-for-the-tests"
TENANTS = {"t1": "sim-api-key-t1", "t2": "sim-api-key-t2", "broken": "not-the-right-key"}


def config(tmp: Path) -> Path:
    text = f'[provider]\ntokens = ["{PROVIDER_TOKEN}"]\n[auth]\nmode = "pbx"\n'
    for tenant, key in TENANTS.items():
        text += f'[[tenants]]\nid = "{tenant}"\nname = "Call center {tenant}"\napi_key = "{key}"\n'
    path = tmp / "tenants.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    tmp = tmp_path_factory.mktemp("provider")
    with sim_server(tmp, "--tenants", "2", "--agents", "5", "--seed", "11", "--rate", "40") as sim, \
            wallboard_server(tmp, sim.url, config=str(config(tmp))) as wb:
        wait_until(lambda: httpx.get(wb.url + "/readyz").status_code == 200, 20, what="readyz")
        yield sim, wb


def test_the_provider_sees_every_tenant_live_and_nothing_personal(servers: tuple[Server, Server],
                                                                   page: Any) -> None:
    sim, wb = servers
    assert httpx.get(wb.url + "/provider").status_code == 403
    assert httpx.get(wb.url + "/provider", params={"token": "wrong"}).status_code == 403
    page.goto(f"{wb.url}/provider?token={PROVIDER_TOKEN}&lang=en")
    for tenant in TENANTS:
        page.wait_for_selector(f'[data-tenant="{tenant}"]')
    page.wait_for_selector('[data-tenant="broken"][data-health="refused"]')
    page.wait_for_selector('[data-tenant="t1"][data-health="ok"]')
    # trouble first
    assert page.locator("[data-tenant]").first.get_attribute("data-tenant") == "broken"
    # live: the rows follow the simulator's traffic without a reload
    truth = httpx.get(sim.url + "/_sim/truth", params={"tenant": "t1"}).json()
    online = sum(1 for a in truth["agents"] if a.get("state") != "offline")
    page.locator('[data-tenant="t1"] [data-col="agents_online"]', has_text=re.compile(rf"^{online}$")).wait_for()
    page.locator('[data-conn="live"]').wait_for()
    # nothing personal: no number of 8 digits or more, no agent name, no call id
    text = page.locator("body").inner_text()
    assert not re.search(r"\d{8,}", text)
    names = [a["name"] for a in truth["agents"] if a.get("name")]
    calls = [c["call_id"] for c in truth.get("calls", [])]
    state = httpx.get(wb.url + "/provider/api/state", params={"token": PROVIDER_TOKEN}).text
    for secret in [*names, *calls]:
        assert secret not in text and secret not in state
    page.screenshot(path=str(SCREENSHOTS / "provider.png"))
