"""Accounts for POST /v1/auth and the bearer tokens of POST /v1/auth/token."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass

from wallboard.sim.faults import Faults

_NAMESPACE = uuid.UUID("6f1c2b1e-5d3a-4c1e-9a57-3d2f1a0b9c11")


@dataclass(frozen=True, slots=True)
class Account:
    username: str
    password: str
    level: str

    @property
    def user_uuid(self) -> str:
        return str(uuid.uuid5(_NAMESPACE, self.username))


class TokenBook:
    """Tokens expire on the real clock: clients compare `expired` with their own time."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._expiry: dict[str, float] = {}

    def issue(self) -> tuple[str, int]:
        now = time.time()
        # Forget dead tokens now and then so a long soak does not grow the book.
        if len(self._expiry) > 1000:
            self._expiry = {t: e for t, e in self._expiry.items() if e > now}
        token = secrets.token_urlsafe(32)
        expired = now + self.faults.token_lifetime
        self._expiry[token] = expired
        return token, int(expired)

    def valid(self, token: str) -> bool:
        return self._expiry.get(token, 0.0) > time.time()

    def expire_all(self) -> None:
        self._expiry.clear()
