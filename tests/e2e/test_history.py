"""The history for real: `wallboard sim --profile day` (its morning prefilled, its evening
live) and `wallboard serve` as processes. The stored intervals equal what the simulator's
/v1/cdr says, survive a restart of the server (there before its first read) and are rebuilt;
then the history page and the board's intraday curve in Chromium, for the screenshots.
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
import stat
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import SCREENSHOTS
from tests.factories import afternoon_zone
from tests.servers import ROOT, Server, sim_server, wait_until, wallboard_env, wallboard_server
from wallboard.pbx.times import PbxTime

ZONE = afternoon_zone()
CLOCK = PbxTime(ZONE)


def sim_calls(sim: Server, day: str) -> Counter[str]:
    """Inbound calls per 15-minute interval of `day`, as the simulator's /v1/cdr gives them."""
    with httpx.Client(base_url=sim.url) as http:
        token = http.post("/v1/auth/token", json={"api_key": "sim-api-key"}).json()["data"]["token"]
        http.headers["Authorization"] = f"Bearer {token}"
        counts: Counter[str] = Counter()
        page = http.get("/v1/cdr", params={"start_date": f"{day} 00:00:00"}).json()
        while page["data"]:
            for r in page["data"]:
                if str(r["direction"]) in ("1", "inbound") and r["time_started"].startswith(day):
                    h, m = int(r["time_started"][11:13]), int(r["time_started"][14:16])
                    counts[f"{h:02d}:{m // 15 * 15:02d}"] += 1
            page = http.get("/v1/cdr", params={"scroll_id": page["scroll_id"]}).json()
    return counts


def stored_calls(wb: Server, day: str) -> Counter[str]:
    rows = httpx.get(f"{wb.url}/api/history/export.json", params={"day": day}).json()["rows"]
    return Counter({r["start"]: r["offered"] for r in rows})


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("history")


@pytest.fixture(scope="module")
def sim(tmp: Path) -> Iterator[Server]:
    with sim_server(tmp, "--profile", "day", "--agents", "20", "--seed", "4", "--timezone", ZONE) as server:
        yield server


def test_the_stored_day_equals_the_cdrs_and_survives_a_restart(sim: Server, tmp: Path) -> None:
    today = datetime.now(CLOCK.zone).date().isoformat()
    with wallboard_server(tmp, sim.url, auth_mode="none", pbx_timezone=ZONE) as wb:
        wait_until(lambda: (stored := stored_calls(wb, today)) and stored == sim_calls(sim, today), 60,
                   interval=1.0, what="the stored intervals to equal the simulator's CDRs")
        before = stored_calls(wb, today)
    print(f"\n{sum(before.values())} inbound calls today in {len(before)} intervals")
    with wallboard_server(tmp, sim.url, auth_mode="none", pbx_timezone=ZONE,
                          poll_cdr_interval="30") as wb:  # (a first read a moment after start)
        after_restart = stored_calls(wb, today)
        assert after_restart == before or sum(after_restart.values()) >= sum(before.values())
        wait_until(lambda: stored_calls(wb, today) == sim_calls(sim, today), 60, interval=1.0,
                   what="the intervals rebuilt after the restart to equal the CDRs")


def seed_past_days(db_path: Path, today: date) -> None:
    """For the picture only: yesterday and last week's same day, copied from today's
    intervals with other numbers (the simulator keeps no past days to backfill from)."""
    with sqlite3.connect(db_path) as db:
        rows = db.execute("SELECT * FROM history_intervals WHERE day = ? AND kind = 'all'",
                          (today.isoformat(),)).fetchall()
        for back, scale in ((1, 0.85), (7, 1.1)):
            day = (today - timedelta(days=back)).isoformat()
            for row in rows:
                counts = [round(v * scale) for v in row[5:13]]
                db.execute("INSERT OR REPLACE INTO history_intervals VALUES (?, ?, ?, ?, ?, "
                           "?, ?, ?, ?, ?, ?, ?, ?, ?)", (row[0], day, row[2], row[3], row[4], *counts, row[13]))


@pytest.mark.browser
def test_the_history_page_and_the_boards_curve(sim: Server, tmp: Path, browser: Any) -> None:
    today = datetime.now(CLOCK.zone).date()
    with wallboard_server(tmp, sim.url, auth_mode="none", pbx_timezone=ZONE) as wb:
        wait_until(lambda: stored_calls(wb, today.isoformat()), 60, interval=1.0, what="today's intervals")
        seed_past_days(tmp / "var" / "wallboard.db", today)
        context = browser.new_context(viewport={"width": 1440, "height": 1200}, locale="vi-VN")
        page = context.new_page()
        page.goto(f"{wb.url}/history?day={today.isoformat()}&lang=vi")
        page.wait_for_selector("[data-intraday][data-drawn='1']")
        assert page.locator("[data-history-table=intervals] tbody tr[data-slot]").count() > 10
        assert page.locator("[data-history-table=agents] tbody tr[data-agent]").count() > 5
        assert page.locator("polyline[data-series]").count() == 3
        page.screenshot(path=str(SCREENSHOTS / "history.png"), full_page=False)
        csv_link = page.locator("[data-export=intervals-csv]").get_attribute("href")
        body = httpx.get(wb.url + str(csv_link)).content
        assert body.startswith(b"\xef\xbb\xbf")
        assert next(csv.reader(io.StringIO(body.decode("utf-8-sig"))))[:3] == ["Ngày", "Khung giờ", "Cuộc gọi đến"]

        board = context.new_page()
        board.set_viewport_size({"width": 1440, "height": 1400})
        board.goto(f"{wb.url}/?lang=en")
        panel = board.locator(".intraday-panel")
        board.wait_for_selector(".intraday-panel [data-intraday][data-drawn='1']")
        panel.scroll_into_view_if_needed()
        panel.screenshot(path=str(SCREENSHOTS / "intraday.png"))
        context.close()


def test_backfill_command_reads_past_days_once(sim: Server, tmp: Path) -> None:
    """`wallboard backfill` as a user runs it; the simulator keeps today only, so the past
    days are read empty, and a second run finds them read (tests/test_history.py reads a
    past day full of calls through the same code)."""
    env = {**os.environ, **wallboard_env(tmp, sim.url, 0), "WALLBOARD_STORAGE_PATH": str(tmp / "backfill.db"),
           "WALLBOARD_PBX_TIMEZONE": ZONE}

    def run() -> str:
        done = subprocess.run([sys.executable, "-m", "wallboard.cli", "backfill", "--days", "2"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    first = run()
    assert "default: 2 days read, 0 read before" in first and " read (24 hours, 0 inbound calls)" in first
    assert "default: 0 days read, 2 read before" in run()
    assert stat.S_IMODE((tmp / "backfill.db").stat().st_mode) == 0o600
