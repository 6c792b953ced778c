"""Accounts for POST /v1/auth and the bearer tokens of POST /v1/auth/token."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass

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
    """Every tenant's tokens in one book, each token naming its tenant.

    Tokens expire on the real clock: clients compare `expired` with their own time.
    """

    def __init__(self) -> None:
        self._tokens: dict[str, tuple[float, str]] = {}  # token -> (expiry, tenant id)
        self._prune_at = 1000

    def issue(self, tenant: str, lifetime: float) -> tuple[str, int]:
        now = time.time()
        # Forget dead tokens now and then so a long soak does not grow the book.
        if len(self._tokens) > self._prune_at:
            self._tokens = {t: v for t, v in self._tokens.items() if v[0] > now}
            self._prune_at = max(1000, 2 * len(self._tokens))
        token = secrets.token_urlsafe(32)
        expired = now + lifetime
        self._tokens[token] = (expired, tenant)
        return token, int(expired)

    def owner(self, token: str) -> str | None:
        """The tenant of a live token; None when unknown or expired."""
        expiry, tenant = self._tokens.get(token, (0.0, ""))
        return tenant if expiry > time.time() else None

    def expire(self, tenant: str) -> None:
        self._tokens = {t: v for t, v in self._tokens.items() if v[1] != tenant}
