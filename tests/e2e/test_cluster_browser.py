"""A real board on a cluster node, in Chromium, through Redis going away and coming back:
it keeps the last state, turns stale (`data-conn="stale"`) once the sources' times stop
moving, and is live again, without a reload, once Redis is back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cluster.rig import SECRET
from tests.servers import sim_server, wait_until, wallboard_server
from tests.services import postgres_server, redis_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_the_board_turns_stale_while_redis_is_down_and_live_when_it_is_back(tmp_path: Path, page: Any) -> None:
    with redis_server() as redis, postgres_server() as pg, \
            sim_server(tmp_path, "--agents", "4", "--seed", "3", "--rate", "30", "--profile", "flat") as sim, \
            wallboard_server(tmp_path, sim.url, auth_mode="none", webhook_secret=SECRET,
                             cluster_redis_url=redis.url, cluster_node_id="solo", cluster_lease_seconds="2",
                             storage_database_url=pg.url) as wb:
        wait_until(lambda: httpx.get(wb.url + "/readyz").json().get("role") == "leader", 20, what="leading")
        page.goto(wb.url + "/")
        page.wait_for_selector('[data-agent="1001"]')
        page.wait_for_selector('[data-conn="live"]', timeout=15_000)
        page.evaluate("window.__noReload = 7")
        redis.kill()
        # the last state stays; the sources' times stop moving: stale after stale_after + a ping
        page.wait_for_selector('[data-conn="stale"]', timeout=20_000)
        assert page.locator('[data-agent="1001"]').count() == 1
        redis.start()
        page.wait_for_selector('[data-conn="live"]', timeout=30_000)
        page.wait_for_selector('[data-agent="1001"]')
        assert page.evaluate("window.__noReload") == 7  # reconnected or resynced, never reloaded
