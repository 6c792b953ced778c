"""The floor's figures for Prometheus (SPEC section 4), read from each tenant's live state
at scrape time: agents by state, callers waiting, the longest wait, service level and
today's calls by outcome. With [[tenants]] each series carries a `tenant` label, bounded
by the tenants this deployment runs; alone, none (the names the SPEC gives, as they are).

Per team and per hotline (floor_groups.py), the same names with a `team` or a `hotline`
label: agents by state, callers waiting and the longest wait (live), the service level and
the calls answered / missed today (`outcome="answered|missed"`, from the CDRs). The floor's
own series carry neither label, so in PromQL `{team="", hotline=""}` selects the floor and
`{team!=""}` the teams; a sum over a name without them would count a call more than once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from wallboard.floor_groups import GroupLive, group_figures
from wallboard.provider import tenant_row, tenant_state
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
            shown = tenant_state(parts)  # the published line's on a node that does not lead
            counts = dict.fromkeys(AGENT_STATES, 0)
            for agent in shown["agents"]:
                counts[agent["state"]] = counts.get(agent["state"], 0) + 1
            for state, n in counts.items():
                agents.add_metric([*tag, state], n)
            row = tenant_row(tenant_id, shown, parts.settings.display.waiting_warn_seconds, now)
            waiting.add_metric(tag, row["waiting"])
            since = row["longest_wait_since"]
            longest.add_metric(tag, max(0.0, (now - since) / 1000) if since else 0.0)
            if row["service_level"] is not None:
                level.add_metric(tag, row["service_level"] / 100)
            for outcome, n in sorted((shown.get("status") or {}).get("counts", {}).items()):
                calls.add_metric([*tag, outcome.lower().replace(" ", "_")], n)
            for state in HEALTH_STATES:
                health.add_metric([*tag, state], 1.0 if row["health"] == state else 0.0)
            if parts.history is not None:
                teams, hotlines = group_figures(parts.history, {a["ext"]: a for a in shown["agents"]},
                                                {c["call_id"]: c for c in shown["calls"]}, now)
                base = dict(zip(labels, tag, strict=True))
                for label, groups in (("team", teams), ("hotline", hotlines)):
                    for name, figures in groups.items():
                        _group(base | {label: name}, figures, now, agents, waiting, longest, level, calls)
        yield from (agents, waiting, longest, level, calls, health)


def _add(family: Metric, labels: dict[str, str], value: float, suffix: str = "") -> None:
    family.samples.append(Sample(family.name + suffix, labels, value, None, None))


def _group(labels: dict[str, str], g: GroupLive, now: int, agents: Metric, waiting: Metric, longest: Metric,
           level: Metric, calls: Metric) -> None:
    """One team's or hotline's series, beside the floor's in the same families."""
    for state, n in g.agents.items():
        _add(agents, labels | {"state": state}, n)
    _add(waiting, labels, g.waiting)
    _add(longest, labels, max(0.0, (now - g.longest_since) / 1000) if g.longest_since else 0.0)
    if g.today.offered:
        _add(level, labels, round(g.today.in_sla / g.today.offered, 4))
    _add(calls, labels | {"outcome": "answered"}, g.today.answered, "_total")
    _add(calls, labels | {"outcome": "missed"}, g.today.missed, "_total")
