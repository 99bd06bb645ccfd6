"""Core's Pulse codec and the project's Redis bus agree, both ways, under both schema ids.

Wire format: one stream entry, field ``data`` = ``JsonCodec`` JSON ``{ts, key, meta, payload}``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from market_data_pipeline import core

from .capabilities import CoreCapabilities
from .conftest import project_attr, skip_not_applicable
from .test_core_defects import close_core_bus

pytestmark = pytest.mark.redis

# Written out, not taken from the code under test: Core's docs name the first, its buses stamp the
# second, and the project must accept both.
SCHEMA_IDS = ["telemetry.FeedbackEvent", "telemetry.backpressure.FeedbackEvent"]


def _event(level: str = "hard") -> Any:
    return core.FeedbackEvent(
        coordinator_id="store-7",
        queue_size=95,
        capacity=100,
        level=core.BackpressureLevel(level),
        ts=time.time(),
    )


@pytest.fixture
async def bus(redis_url: str, redis_namespace: str) -> Any:
    bus_cls = project_attr("bus.redis_streams", "RedisStreamBus")
    bus = bus_cls(redis_url, namespace=redis_namespace, block_ms=100)
    yield bus
    await bus.close()


@pytest.fixture
async def raw_redis(redis_url: str) -> Any:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def _next_event(bus: Any) -> Any:
    events = bus.subscribe()
    try:
        return await asyncio.wait_for(anext(aiter(events)), timeout=10)
    finally:
        await events.aclose()


async def test_project_publishes_what_core_decodes(bus: Any, raw_redis: Any) -> None:
    event = _event()
    await bus.publish(event)
    entries = await raw_redis.xrange(bus.key)
    assert len(entries) == 1
    _, fields = entries[0]
    assert set(fields) == {b"data"}, "one field, 'data', as Core's RedisStreamsBus writes"
    envelope = core.JsonCodec("v1").decode(fields[b"data"], core.FeedbackEvent)
    assert envelope.payload == event
    assert envelope.meta.schema_id in SCHEMA_IDS
    assert envelope.meta.track in ("v1", "v2")


@pytest.mark.parametrize("schema_id", SCHEMA_IDS)
async def test_project_consumes_what_core_encodes(bus: Any, raw_redis: Any, schema_id: str) -> None:
    event = _event("soft")
    await raw_redis.xadd(bus.key, {"data": core.JsonCodec("v1").encode(schema_id, event)})
    assert await _next_event(bus) == event


async def test_project_consumes_what_cores_own_bus_publishes(
    bus: Any, redis_url: str, redis_namespace: str, caps: CoreCapabilities
) -> None:
    if not caps.core_redis_bus:
        skip_not_applicable("Core's RedisStreamsBus is not importable (no redis dependency)")
    from market_data_core.events.adapters.redis_streams import RedisStreamsBus

    core_bus = RedisStreamsBus(redis_url, namespace=redis_namespace)
    event = _event("ok")
    try:
        await core_bus.publish(bus.key.split(":", 1)[1], event)
    finally:
        await close_core_bus(core_bus)
    assert await _next_event(bus) == event


async def test_stream_key_matches_cores_layout(bus: Any, redis_namespace: str) -> None:
    assert bus.key == f"{redis_namespace}:telemetry.feedback"
    assert bus.dlq_key == f"{bus.key}.dlq"
