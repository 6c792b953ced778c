"""Prometheus figures. One registry per app, so tests can build many apps; the
values that live elsewhere (screens, PBX requests, asyncio tasks) are read at
scrape time. The process figures (RSS, open fds) come from prometheus_client's
ProcessCollector, so a leak shows on any dashboard without a soak run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class _Live(Collector):
    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Any]:
        v = self._read()
        screens = GaugeMetricFamily("wallboard_screens", "Connected screens", labels=["kind"])
        for kind, n in v["screens"].items():
            screens.add_metric([kind], n)
        yield screens
        yield CounterMetricFamily("wallboard_patches_sent", "Patches sent to screens",
                                  value=v["patches_sent"])
        yield CounterMetricFamily("wallboard_ws_bytes_sent", "Bytes sent over /ws",
                                  value=v["bytes_sent"])
        yield CounterMetricFamily("wallboard_queue_drops", "Screen queues that overflowed",
                                  value=v["drops"])
        yield CounterMetricFamily("wallboard_resyncs", "Snapshots asked for by screens",
                                  value=v["resyncs"])
        yield CounterMetricFamily("wallboard_screens_clogged", "Times a screen was found not reading",
                                  value=v["clogs"])
        yield CounterMetricFamily("wallboard_resumes", "Screens that came back and were sent only what they missed",
                                  value=v["resumes"])
        yield GaugeMetricFamily("wallboard_seq", "Current state seq", value=v["seq"])
        requests = CounterMetricFamily("wallboard_pbx_requests", "Requests sent to the PBX",
                                       labels=["route"])
        for route, n in v["pbx_requests"].items():
            requests.add_metric([route], n)
        yield requests
        yield GaugeMetricFamily("wallboard_asyncio_tasks", "Tasks alive in the event loop",
                                value=_task_count())


def _task_count() -> int:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # scraped from outside a running loop (tests)
        return 0


class Metrics:
    def __init__(self, read_live: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry()
        self.poll_seconds = Histogram("wallboard_poll_seconds", "PBX poll latency", ["source"],
                                      registry=self.registry,
                                      buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.poll_errors = Counter("wallboard_poll_errors", "Failed PBX polls", ["source", "code"],
                                   registry=self.registry)
        self.webhooks = Counter("wallboard_webhooks", "Webhooks by result", ["result"],
                                registry=self.registry)
        self.registry.register(_Live(read_live))
        ProcessCollector(registry=self.registry)

    def observe_poll(self, source: str, seconds: float, error: str | None) -> None:
        self.poll_seconds.labels(source).observe(seconds)
        if error:
            self.poll_errors.labels(source, error).inc()

    def count_webhook(self, result: str) -> None:
        self.webhooks.labels(result).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
