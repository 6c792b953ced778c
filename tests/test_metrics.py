from __future__ import annotations

import asyncio
import re
from typing import Any

from wallboard.metrics import Metrics

LIVE: dict[str, Any] = {
    "screens": {"supervisor": 2, "viewer": 0, "kiosk": 5}, "patches_sent": 120, "bytes_sent": 45_000,
    "drops": 3, "resyncs": 4, "clogs": 5, "resumes": 6, "seq": 77,
    "pbx_requests": {"/v1/call": 9, "/v1/monitor/agent": 10},
}


def value(text: str, sample: str) -> float:
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    assert match, f"{sample} missing"
    return float(match.group(1))


def test_live_figures_are_read_at_scrape_time() -> None:
    live = dict(LIVE)
    metrics = Metrics(lambda: live)
    text = metrics.render().decode()
    assert value(text, 'wallboard_screens{kind="kiosk"}') == 5
    assert value(text, 'wallboard_screens{kind="supervisor"}') == 2
    assert value(text, "wallboard_patches_sent_total") == 120
    assert value(text, "wallboard_ws_bytes_sent_total") == 45_000
    assert value(text, "wallboard_queue_drops_total") == 3
    assert value(text, "wallboard_resyncs_total") == 4
    assert value(text, "wallboard_screens_clogged_total") == 5
    assert value(text, "wallboard_seq") == 77
    assert value(text, 'wallboard_pbx_requests_total{route="/v1/call"}') == 9
    live["seq"] = 78
    assert value(metrics.render().decode(), "wallboard_seq") == 78


def test_poll_latency_and_errors_per_source() -> None:
    metrics = Metrics(lambda: LIVE)
    metrics.observe_poll("agents", 0.03, None)
    metrics.observe_poll("agents", 0.2, "TIMEOUT")
    metrics.observe_poll("calls", 0.01, "HTTP_503")
    text = metrics.render().decode()
    assert value(text, 'wallboard_poll_seconds_count{source="agents"}') == 2
    assert value(text, 'wallboard_poll_seconds_bucket{le="0.05",source="agents"}') == 1
    assert value(text, 'wallboard_poll_errors_total{code="TIMEOUT",source="agents"}') == 1
    assert value(text, 'wallboard_poll_errors_total{code="HTTP_503",source="calls"}') == 1


def test_webhooks_by_result() -> None:
    metrics = Metrics(lambda: LIVE)
    for result in ("accepted", "accepted", "rejected", "not_found"):
        metrics.count_webhook(result)
    text = metrics.render().decode()
    assert value(text, 'wallboard_webhooks_total{result="accepted"}') == 2
    assert value(text, 'wallboard_webhooks_total{result="rejected"}') == 1
    assert value(text, 'wallboard_webhooks_total{result="not_found"}') == 1


async def test_asyncio_tasks_and_process_figures() -> None:
    metrics = Metrics(lambda: LIVE)
    before = value(metrics.render().decode(), "wallboard_asyncio_tasks")
    stop = asyncio.Event()
    extra = [asyncio.create_task(stop.wait()) for _ in range(5)]
    text = metrics.render().decode()
    stop.set()
    await asyncio.gather(*extra)
    assert value(text, "wallboard_asyncio_tasks") == before + 5
    assert value(text, "process_resident_memory_bytes") > 1_000_000
    assert value(text, "process_open_fds") > 0


def test_apps_do_not_share_a_registry() -> None:
    a, b = Metrics(lambda: LIVE), Metrics(lambda: LIVE)
    a.count_webhook("accepted")
    assert 'wallboard_webhooks_total{result="accepted"}' not in b.render().decode()


def test_the_floor_figures_follow_the_live_state(tmp_path: Any) -> None:
    from tests.factories import T0, Running, agent, event, status
    from tests.test_hub import make_app

    wb = Running(make_app(tmp_path, 8000))
    wb.publish(wb.live.apply_agents([agent("1001"), agent("1002"), agent("1003", "oncall", "c-9")], T0))
    wb.publish(wb.live.apply_event(event("ringing", "c-1", ext="1001", number="0899123456", at=T0 + 500)))
    wb.publish(wb.live.apply_status(status(ANSWERED=15, BUSY=2), T0))
    wb.flush()
    text = wb.metrics.render().decode()
    assert value(text, 'wallboard_agents{state="ringing"}') == 1
    assert value(text, 'wallboard_agents{state="idle"}') == 1
    assert value(text, 'wallboard_agents{state="oncall"}') == 1
    assert value(text, "wallboard_callers_waiting") == 1
    assert value(text, "wallboard_longest_wait_seconds") > 0
    assert value(text, 'wallboard_calls_total{outcome="answered"}') == 15
    assert value(text, 'wallboard_calls_total{outcome="busy"}') == 2
    assert "0899123456" not in text  # figures, never a number
