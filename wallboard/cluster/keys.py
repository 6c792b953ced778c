"""Every Redis name the cluster uses, per scope (one tenant).

The scope sits in braces, a Redis Cluster hash tag: all keys of one scope live in one
slot, so each Lua script below touches keys of one slot only and stays atomic on a
cluster too, while different tenants spread over the slots.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCOPE = re.compile(r"[a-z0-9-]{1,32}")


@dataclass(frozen=True, slots=True)
class Keys:
    scope: str

    def __post_init__(self) -> None:
        if not SCOPE.fullmatch(self.scope):
            raise ValueError(f"scope {self.scope!r} is not [a-z0-9-]{{1,32}}")

    def _key(self, name: str) -> str:
        return f"wb:{{{self.scope}}}:{name}"

    @property
    def lease(self) -> str:
        """String: '<node> <fence> <nonce>' of the leader, with the lease as its expiry."""
        return self._key("lease")

    @property
    def fence(self) -> str:
        """Integer: the fencing counter, INCR on every win."""
        return self._key("fence")

    @property
    def meta(self) -> str:
        """Hash: the patch line's head: e (epoch), s (last seq), f (fence that wrote it), p (last stream pos)."""
        return self._key("meta")

    @property
    def patches(self) -> str:
        """Stream: one entry per patch, id '<pos>-0'; fields e, s, f and one per audience."""
        return self._key("patches")

    @property
    def snapshot(self) -> str:
        """Hash: the latest snapshot: e, s, f and 'p:<part>' per part (the engine names them)."""
        return self._key("snapshot")

    @property
    def intake(self) -> str:
        """Stream: webhooks accepted by any node, not yet applied by the leader; fields b (body), r (received ms)."""
        return self._key("intake")


# The consumer group of the intake stream: the leaders of the scope, one at a time.
INTAKE_GROUP = "leaders"
