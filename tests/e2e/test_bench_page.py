"""The benchmark's page, served by the benchmark (not by the app): the board's own
store and renderer driven at a small scale, and the board still says what the store says."""

from __future__ import annotations

import pytest

from bench.browser import measure, static_server
from tests.conftest import CHROMIUM, _no_browser

pytestmark = pytest.mark.browser


def test_the_benchmark_page_runs_the_real_board() -> None:
    if not CHROMIUM.exists():
        _no_browser("no /usr/bin/chromium (Debian package 'chromium'); .ci/run installs it")
    with static_server() as url:
        result = measure(url, timeout_s=60, agents=300, rate=20, seconds=2)
    assert "page_errors" not in result and "skipped" not in result, result
    assert result["tiles"] == 300 and result["changes_per_second"] > 0
    check = result["check"]
    assert (check["tiles_wrong"], check["rows_wrong"], check["displayed_out_of_state_order"]) == (0, 0, 0), check
