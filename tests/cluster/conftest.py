from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from tests.services import RedisServer, redis_server
from wallboard.cluster.redis_client import connect


@pytest.fixture
def redis_srv() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
async def client(redis_srv: RedisServer) -> AsyncIterator[Redis]:
    redis = connect(redis_srv.url, connect_timeout=1.0)
    try:
        yield redis
    finally:
        await redis.aclose()
