"""Known Core defects (CORE_NOTES), pinned as strict xfails: a Core release that fixes one fails
here as XPASS, so the workaround in the project can be revisited.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

import pytest

from market_data_pipeline import core

from .capabilities import CAPS

STREAM = "telemetry.feedback"
# Generous: entries are already in the stream, so a fixed Core delivers them within
# milliseconds (100x less than this); a slow runner must still not look like a Core defect.
DELIVERY_TIMEOUT_S = 0.5


def _event() -> Any:
    return core.FeedbackEvent(
        coordinator_id="store-1", queue_size=90, capacity=100, level="hard", ts=time.time()
    )


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="Core's codec hashes the payload unsorted but checks it sorted",
)
def test_codec_hash_matches_what_decode_computes() -> None:
    data = json.loads(core.JsonCodec("v1").encode("telemetry.FeedbackEvent", _event()))
    canonical = json.dumps(data["payload"], sort_keys=True).encode()
    assert data["meta"]["hash"] == hashlib.sha256(canonical).hexdigest()


@pytest.mark.skipif(not CAPS.core_inmemory_bus, reason="Core has no InMemoryBus")
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="Core's buses stamp telemetry.backpressure.FeedbackEvent; "
    "its docs say telemetry.FeedbackEvent",
)
async def test_core_inmemory_bus_uses_the_documented_schema_id() -> None:
    from market_data_core.events.adapters.inmem import InMemoryBus

    bus = InMemoryBus(enable_observability=False)
    await bus.publish(STREAM, _event())
    envelope = await anext(aiter(bus.subscribe(STREAM, group="g", consumer="c")))
    assert envelope.meta.schema_id == "telemetry.FeedbackEvent"


@pytest.fixture
async def core_bus(redis_url: str, redis_namespace: str) -> Any:
    if not CAPS.core_redis_bus:
        pytest.skip("Core's RedisStreamsBus is not importable (its redis dependency is missing)")
    from market_data_core.events.adapters.redis_streams import RedisStreamsBus

    bus = RedisStreamsBus(redis_url, namespace=redis_namespace)
    yield bus
    await close_core_bus(bus)


@pytest.fixture
async def raw(redis_url: str) -> Any:
    """A plain Redis client: inspect and prepare the streams without Core's internals."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture
def key(redis_namespace: str) -> str:
    """Core's stream key: ``<namespace>:<stream>`` (test_wire_format checks this layout)."""
    return f"{redis_namespace}:{STREAM}"


async def close_core_bus(bus: Any) -> None:
    """Close Core's bus client with ``aclose`` (Core's ``close()`` calls redis' deprecated one).

    The one internal used: a Core without ``_redis`` is an error here, never an expected failure.
    """
    if not hasattr(bus, "_redis"):
        pytest.fail("Core's RedisStreamsBus has no _redis client any more: update close_core_bus")
    if bus._redis is not None:
        await bus._redis.aclose()
        bus._redis = None


async def _first(gen: Any) -> Any:
    try:
        return await asyncio.wait_for(anext(gen), timeout=DELIVERY_TIMEOUT_S)
    except TimeoutError:
        return None
    finally:
        await gen.aclose()


@pytest.mark.redis
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="Core's subscriber dead-letters the FeedbackEvents Core's publisher writes",
)
async def test_core_bus_round_trips_its_own_feedback_event(
    core_bus: Any, raw: Any, key: str
) -> None:
    await raw.xgroup_create(key, "g", id="0", mkstream=True)  # so '$' cannot lose the entry
    event = _event()
    await core_bus.publish(STREAM, event)
    envelope = await _first(core_bus.subscribe(STREAM, group="g", consumer="c", block_ms=100))
    assert envelope is not None and envelope.payload == event


@pytest.mark.redis
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="Core's consumer groups start at '$': earlier entries are lost",
)
async def test_core_bus_delivers_entries_published_before_subscribing(
    core_bus: Any, raw: Any, key: str
) -> None:
    data = core.JsonCodec("v1").encode("telemetry.FeedbackEvent", _event())
    await raw.xadd(key, {"data": data})
    envelope = await _first(core_bus.subscribe(STREAM, group="g", consumer="c", block_ms=100))
    assert envelope is not None


@pytest.mark.redis
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="Core's ack() never sends XACK: the pending list grows",
)
async def test_core_bus_ack_clears_the_pending_entry(core_bus: Any, raw: Any, key: str) -> None:
    await raw.xgroup_create(key, "g", id="0", mkstream=True)
    data = core.JsonCodec("v1").encode("telemetry.FeedbackEvent", _event())
    await raw.xadd(key, {"data": data})
    envelope = await _first(core_bus.subscribe(STREAM, group="g", consumer="c", block_ms=100))
    if envelope is None:  # not the defect under test: fail for real, not as an xfail
        pytest.fail("Core's bus did not deliver an entry published after its group was created")
    await core_bus.ack(STREAM, envelope.id)
    pending = await raw.xpending(key, "g")
    assert pending["pending"] == 0


@pytest.mark.redis
@pytest.mark.xfail(
    strict=True, raises=AssertionError, reason="Core's fail() dead-letters an empty payload"
)
async def test_core_bus_fail_keeps_the_payload_in_the_dead_letters(
    core_bus: Any, raw: Any, key: str
) -> None:
    entry_id = await raw.xadd(key, {"data": "{}"})
    await core_bus.fail(STREAM, entry_id, "test")
    dead = await raw.xrange(f"{key}.dlq")
    assert dead and dead[-1][1]["data"] != ""
