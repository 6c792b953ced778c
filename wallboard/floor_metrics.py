"""The floor's figures for Prometheus (SPEC section 4), read from each tenant's live state
at scrape time: agents by state, callers waiting, the longest wait, service level and
today's calls by outcome. With [[tenants]] each series carries a `tenant` label, bounded
by the tenants this deployment runs; alone, none (the names the SPEC gives, as they are).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from wallboard.provider import tenant_row
from wallboard.tenancy import Site

AGENT_STATES = ("offline", "idle", "ringing", "oncall")
HEALTH_STATES = ("ok", "stale", "starting", "refused")


class FloorCollector(Collector):
    def __init__(self, site: Site) -> None:
        self.site = site

    def collect(self) -> Iterator[Any]:
        labels = ["tenant"] if self.site.multi else []
        agents = GaugeMetricFamily("wallboard_agents", "Agents by state", labels=[*labels, "state"])
        waiting = GaugeMetricFamily("wallboard_callers_waiting", "Inbound callers ringing, not yet answered",
                                    labels=labels)
        longest = GaugeMetricFamily("wallboard_longest_wait_seconds", "How long the longest-waiting caller has "
                                    "waited", labels=labels)
        level = GaugeMetricFamily("wallboard_service_level_ratio", "Inbound calls answered within sla_seconds "
                                  "today, 0 to 1", labels=labels)
        calls = CounterMetricFamily("wallboard_calls", "Today's calls by outcome, as the PBX reports them "
                                    "(reset at the PBX's midnight)", labels=[*labels, "outcome"])
        health = GaugeMetricFamily("wallboard_tenant_health", "1 for the state a tenant's data is in",
                                   labels=[*labels, "state"])
        now = int(time.time() * 1000)
        for tenant_id, parts in list(self.site.tenants.items()):
            tag = [tenant_id] if labels else []
            live = parts.engine.live
            counts = dict.fromkeys(AGENT_STATES, 0)
            for agent in live.agents.values():
                counts[agent["state"]] = counts.get(agent["state"], 0) + 1
            for state, n in counts.items():
                agents.add_metric([*tag, state], n)
            row = tenant_row(tenant_id, parts, parts.settings.display.waiting_warn_seconds, now)
            waiting.add_metric(tag, row["waiting"])
            since = row["longest_wait_since"]
            longest.add_metric(tag, max(0.0, (now - since) / 1000) if since else 0.0)
            if row["service_level"] is not None:
                level.add_metric(tag, row["service_level"] / 100)
            for outcome, n in sorted(live.status.get("counts", {}).items()):
                calls.add_metric([*tag, outcome.lower().replace(" ", "_")], n)
            for state in HEALTH_STATES:
                health.add_metric([*tag, state], 1.0 if row["health"] == state else 0.0)
        yield from (agents, waiting, longest, level, calls, health)
