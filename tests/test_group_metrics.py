"""/metrics per team and per hotline (bounded label sets), and the Grafana dashboard in
deploy/ held to what /metrics exposes."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.factories import agent, event
from tests.servers import ROOT
from wallboard.app import create_app, parts_of
from wallboard.floor_groups import TOP_HOTLINES
from wallboard.pbx.models import Cdr
from wallboard.pbx.times import PbxTime
from wallboard.settings import defaults

CLOCK = PbxTime("Asia/Ho_Chi_Minh")
DASHBOARD = ROOT / "deploy" / "grafana" / "wallboard-floor.json"


def today_cdr(n: int, hotline: str, ext: str, *, answered: bool = True, wait_s: int = 5) -> Cdr:
    now = int(datetime.now().timestamp() * 1000)
    started = max(CLOCK.day_start_ms(now), now - 3_600_000) + n * 1000
    return Cdr(id=f"c{n}", sip_call_id="", cause="NORMAL_CLEARING", duration=60, direction="inbound",
               recording_url="", extension=ext, from_number="0899000111", to_number=hotline, receive_dest="",
               time_started=CLOCK.format(started),
               time_answered=CLOCK.format(started + wait_s * 1000) if answered else "",
               time_ended=CLOCK.format(started + 60_000), status="ANSWERED" if answered else "NO ANSWER")


def value(text: str, series: str) -> float:
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.M)
    assert found, f"{series} not in /metrics"
    return float(found.group(1))


@pytest.fixture
async def metrics_text(tmp_path: Path) -> str:
    app = create_app(defaults().with_values(webhook={"register": False}, storage={"path": str(tmp_path / "wb.db")}))
    parts = parts_of(app)
    recorder = parts.history
    assert recorder is not None
    recorder.intervals.set_teams({"Sales": frozenset({"1001", "1002"}), "Care": frozenset({"1003"})})
    calls = [today_cdr(1, "19001234", "1001"), today_cdr(2, "19001234", "1002", wait_s=40),
             today_cdr(3, "19001234", "1001", answered=False), today_cdr(4, "19005678", "1003")]
    calls += [today_cdr(10 + k, f"1800{k:04d}", "1003") for k in range(TOP_HOTLINES + 5)]
    recorder.add_cdrs(calls, True)
    now = int(datetime.now().timestamp() * 1000)
    live = parts.engine.live
    parts.engine.publish(live.apply_agents([agent("1001", "oncall", "x-1"), agent("1002"), agent("1003")], now))
    parts.engine.publish(live.apply_event(event("ringing", "c-w", ext="1002", hotline="19001234", at=now - 30_000)))
    parts.engine.flush()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://wb") as http:
        text = (await http.get("/metrics")).text
    await recorder.history.close()
    return text


def test_teams_and_hotlines_have_their_own_series_beside_the_floors(metrics_text: str) -> None:
    text = metrics_text
    assert value(text, 'wallboard_agents{state="oncall",team="Sales"}') == 1
    assert value(text, 'wallboard_agents{state="ringing",team="Sales"}') == 1
    assert value(text, 'wallboard_agents{state="idle",team="Care"}') == 1
    assert value(text, 'wallboard_callers_waiting{team="Sales"}') == 1
    assert value(text, 'wallboard_callers_waiting{hotline="19001234"}') == 1
    assert value(text, 'wallboard_callers_waiting{team="Care"}') == 0
    assert 25 <= value(text, 'wallboard_longest_wait_seconds{hotline="19001234"}') < 120
    assert value(text, 'wallboard_calls_total{hotline="19001234",outcome="answered"}') == 2
    assert value(text, 'wallboard_calls_total{hotline="19001234",outcome="missed"}') == 1
    assert value(text, 'wallboard_service_level_ratio{hotline="19001234"}') == pytest.approx(1 / 3, abs=1e-3)
    assert value(text, 'wallboard_calls_total{outcome="answered",team="Sales"}') == 2
    # The floor's own series are as before: no team or hotline label.
    assert value(text, "wallboard_callers_waiting") == 1
    assert value(text, 'wallboard_agents{state="oncall"}') == 1


def test_label_sets_are_bounded(metrics_text: str) -> None:
    hotlines = set(re.findall(r'hotline="([^"]*)"', metrics_text))
    assert len(hotlines) == TOP_HOTLINES and "19001234" in hotlines
    assert set(re.findall(r'team="([^"]*)"', metrics_text)) == {"Sales", "Care"}
    assert "0899000111" not in metrics_text  # callers' numbers never become labels


def test_the_grafana_dashboard_queries_only_what_metrics_exposes(metrics_text: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["panels"]
    exposed: dict[str, set[str]] = {}
    for name, labels in re.findall(r"^([a-z_]+)(?:\{([^}]*)\})? ", metrics_text, re.M):
        exposed.setdefault(name, set()).update(re.findall(r'([a-z_]+)="', labels))
    exposed.setdefault("wallboard_agents", set()).add("tenant")  # with [[tenants]] (tests/test_tenants.py)
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    queries += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    assert len(queries) >= 10
    for query in queries:
        names = re.findall(r"\bwallboard_[a-z_]+", query)
        assert names, f"no metric in {query!r}"
        for name in names:
            assert name in exposed, f"{name} (in {query!r}) is not exposed by /metrics"
            for selector in re.findall(rf"{name}\{{([^}}]*)\}}", query):
                for label in re.findall(r"([a-z_]+)\s*[=!~]", selector):
                    assert label in exposed[name] | {"tenant"}, f"{name} has no label {label} ({query!r})"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
