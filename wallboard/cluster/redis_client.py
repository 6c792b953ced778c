"""The Redis client the cluster code takes: bytes, a short connect timeout, one quick retry.

redis-py's default retries three times with up to ten seconds of backoff: a lease
renewal or a patch would wait that long behind a dead connection. The loops here retry
on their own, with their own backoff, and know what a retried write means (the bus's
script answers 'dup' to a write it already did).
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff


def connect(url: str, *, connect_timeout: float = 2.0) -> Redis:
    return Redis.from_url(url, socket_connect_timeout=connect_timeout, socket_keepalive=True,
                          retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), 1))
