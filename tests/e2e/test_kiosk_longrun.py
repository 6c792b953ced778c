"""A TV that runs for months: the kiosk page in Chromium through a simulated day (the
simulator's clock runs DAY_SECONDS real seconds to the day, its day profile at a small
peak), with the JS heap, the DOM's node count and the event listeners measured after a
garbage collection at the start and at the end. None may grow beyond a small bound; the
figures are printed (`-s`).

LONGRUN_SECONDS=N runs the day in N real seconds instead (the default keeps `make test`
reasonable; a day in 30 minutes is closer to a TV's life)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.servers import Server, sim_server, wait_until, wallboard_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]
KIOSK = "tv-token-for-the-long-run"
DAY_SECONDS = float(os.environ.get("LONGRUN_SECONDS", "60"))
AGENTS = 30

# From the whole roster on screen to the end of a day after it.
HEAP_GROWTH_BYTES = 3 * 1024 * 1024
NODES_GROWTH = 400  # rows of calls in progress come and go: a few hundred either way
LISTENERS_GROWTH = 10


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server]]:
    tmp = tmp_path_factory.mktemp("longrun")
    speed = 86_400 / DAY_SECONDS
    with sim_server(tmp, "--agents", str(AGENTS), "--seed", "17", "--rate", "1.5", "--speed", f"{speed:.1f}") as sim, \
            wallboard_server(tmp, sim.url, auth_mode="pbx", auth_kiosk_tokens=KIOSK, display_shift_minutes="1") as wb:
        wait_until(lambda: httpx.get(wb.url + "/readyz").status_code == 200, 30, what="readyz")
        yield sim, wb


def measure(cdp: Any) -> dict[str, float]:
    cdp.send("HeapProfiler.collectGarbage")
    cdp.send("HeapProfiler.collectGarbage")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    return {"heap": metrics["JSHeapUsedSize"], "nodes": metrics["Nodes"], "listeners": metrics["JSEventListeners"],
            "documents": metrics["Documents"]}


def test_a_kiosk_runs_a_simulated_day_without_growing(day: tuple[Server, Server], browser: Any) -> None:
    _, wb = day
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(f"{wb.url}/kiosk?token={KIOSK}")
        page.wait_for_selector('.conn[data-conn="live"]')
        cdp = context.new_cdp_session(page)
        cdp.send("Performance.enable")
        # Every agent has a tile once seen (an agent seen today and gone is offline): the start
        # is when the whole roster has come in, the first shifts of the simulated morning.
        wait_until(lambda: page.locator("[data-agent]").count() >= AGENTS, DAY_SECONDS, interval=1.0,
                   what="every agent's tile")
        page.wait_for_timeout(5_000)
        start = measure(cdp)
        started = time.monotonic()
        seen_calls = 0
        lowest_heap = start["heap"]
        while time.monotonic() - started < DAY_SECONDS:
            page.wait_for_timeout(10_000)
            seen_calls = max(seen_calls, page.locator("[data-call]").count())
            lowest_heap = min(lowest_heap, measure(cdp)["heap"])
        end = measure(cdp)
        live = page.locator(".conn").get_attribute("data-conn")
        print(f"\nkiosk long run, {DAY_SECONDS:.0f} s for a simulated day, {AGENTS} agents: "
              f"JS heap {start['heap'] / 1e6:.2f} -> {end['heap'] / 1e6:.2f} MB (lowest {lowest_heap / 1e6:.2f}), "
              f"DOM nodes {start['nodes']:.0f} -> {end['nodes']:.0f}, "
              f"listeners {start['listeners']:.0f} -> {end['listeners']:.0f}, "
              f"documents {start['documents']:.0f} -> {end['documents']:.0f}; "
              f"most calls on screen at once {seen_calls}; connection {live}")
        assert not errors, errors
        assert seen_calls > 0, "no call came during the day"
        assert end["heap"] - start["heap"] <= HEAP_GROWTH_BYTES, (start, end)
        assert end["nodes"] - start["nodes"] <= NODES_GROWTH, (start, end)
        assert end["listeners"] - start["listeners"] <= LISTENERS_GROWTH, (start, end)
        assert end["documents"] == start["documents"], (start, end)
    finally:
        context.close()
