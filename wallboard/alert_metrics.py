"""The alerts' deliveries for Prometheus, read at scrape time from each tenant's outbox
(alerts.py): `wallboard_alerts_total{channel,result}` with result sent, failed (given up),
retried or dropped (a full queue), and `wallboard_alerts_queued{channel}`; with
[[tenants]] a `tenant` label first. (Per team and hotline figures: floor_groups.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from wallboard.tenancy import Site

RESULTS = ("sent", "failed", "retried", "dropped")


class AlertCollector(Collector):
    def __init__(self, site: Site) -> None:
        self.site = site

    def collect(self) -> Iterator[Any]:
        lt = ["tenant"] if self.site.multi else []
        alerts = CounterMetricFamily("wallboard_alerts", "Alert messages by channel and outcome",
                                     labels=[*lt, "channel", "result"])
        queued = GaugeMetricFamily("wallboard_alerts_queued", "Alert messages waiting per channel",
                                   labels=[*lt, "channel"])
        for tenant_id, parts in list(self.site.tenants.items()):
            if parts.board is None:
                continue
            tag = [tenant_id] if lt else []
            for channel, tally in parts.board.outbox.status().items():
                for result in RESULTS:
                    alerts.add_metric([*tag, channel, result], tally[result])
                queued.add_metric([*tag, channel], tally["queued"])
        yield alerts
        yield queued
