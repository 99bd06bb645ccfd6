"""Fixtures for the Redis bus: buses on the test namespace, a raw client, a private server."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis
from redis_server import RedisServer

from market_data_pipeline.bus.redis_streams import RedisStreamBus


@pytest.fixture
async def make_bus(
    redis_url: str, redis_namespace: str
) -> AsyncIterator[Callable[..., RedisStreamBus]]:
    """Build RedisStreamBus objects on the test namespace; all are closed afterwards."""
    buses: list[RedisStreamBus] = []

    def build(**options: Any) -> RedisStreamBus:
        options.setdefault("block_ms", 50)
        options.setdefault("backoff_cap_s", 0.2)
        bus = RedisStreamBus(options.pop("url", redis_url), namespace=redis_namespace, **options)
        buses.append(bus)
        return bus

    yield build
    for bus in buses:
        await bus.close()


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A plain synchronous client for writing odd entries and checking the streams."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer()
    server.start()
    yield server
    server.kill()


@pytest.fixture
def make_redis_server() -> Iterator[Callable[..., RedisServer]]:
    """Start private redis-servers with extra arguments; all are stopped afterwards."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    servers: list[RedisServer] = []

    def start(*extra: str) -> RedisServer:
        server = RedisServer(*extra)
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.kill()
