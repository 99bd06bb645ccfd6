"""Fixtures for the Redis bus: buses on the test namespace, a raw client, a private server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throwaway redis-server without persistence that a test may stop and start."""

    def __init__(self, *extra: str) -> None:
        self.extra = extra  # more redis-server arguments, e.g. "--requirepass", "pw"
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--bind",
                "127.0.0.1",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if redis.Redis(port=self.port, socket_connect_timeout=0.2).ping():
                    return
            except redis.AuthenticationError:
                return  # up, and asking for the password it was given
            except redis.ConnectionError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(10)
            self._proc = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer()
    server.start()
    yield server
    server.stop()


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
            server.stop()
