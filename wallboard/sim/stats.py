"""Request counts per route since start, for benchmarks (GET /_sim/stats)."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

# Ids in paths (uuids, call ids, tenant ids with digits) are folded so that counts group by route.
_ID = re.compile(r"/(?=[^/]*\d)[^/]{6,}")


class RequestStats:
    def __init__(self) -> None:
        self.started = time.time()
        self.requests: Counter[str] = Counter()
        self.hooks: Counter[str] = Counter()

    def count(self, method: str, path: str) -> None:
        self.requests[f"{method} {_ID.sub('/{id}', path)}"] += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "since": round(self.started * 1000),
            "requests": dict(self.requests),
            "total": sum(self.requests.values()),
            "hooks": dict(self.hooks),
        }

    @staticmethod
    def combined(per_tenant: dict[str, RequestStats]) -> dict[str, Any]:
        """Every tenant's counts added up, and each tenant's total (GET /_sim/stats?tenant=all)."""
        requests: Counter[str] = Counter()
        hooks: Counter[str] = Counter()
        for stats in per_tenant.values():
            requests.update(stats.requests)
            hooks.update(stats.hooks)
        since = min((s.started for s in per_tenant.values()), default=time.time())
        return {
            "since": round(since * 1000),
            "requests": dict(requests),
            "total": sum(requests.values()),
            "hooks": dict(hooks),
            "tenants": {tenant: sum(s.requests.values()) for tenant, s in per_tenant.items()},
        }
