"""Known Core defects (docs/core.md) the pipeline works around, pinned so a fix is noticed.

Each test observes one defect. While Core still has it the test passes silently; when a Core
release fixes it the test still passes (the pipeline copes either way) and records a
``defect-fixed`` notice naming the workaround that can go, so the run is "compatible with
notices", never red. Anything else that goes wrong (Core's bus no longer delivers at all) fails.
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
from .conftest import skip_not_applicable

Notify = Any  # the ``notice`` fixture: notice(kind, message, workaround=None)

STREAM = "telemetry.feedback"
# Generous: entries are already in the stream, so a fixed Core delivers them within
# milliseconds (100x less than this); a slow runner must still not look like a Core defect.
DELIVERY_TIMEOUT_S = 0.5


def _event() -> Any:
    return core.FeedbackEvent(
        coordinator_id="store-1",
        queue_size=90,
        capacity=100,
        level=core.BackpressureLevel.hard,
        ts=time.time(),
    )


def _fixed(notice: Notify, defect: str, workaround: str) -> None:
    notice("defect-fixed", f"Core fixed: {defect}", workaround=workaround)


def test_codec_hash_matches_what_decode_computes(notice: Notify) -> None:
    """Defect: Core's codec hashes the payload unsorted but checks it sorted."""
    data = json.loads(core.JsonCodec("v1").encode("telemetry.FeedbackEvent", _event()))
    canonical = json.dumps(data["payload"], sort_keys=True).encode()
    if data["meta"]["hash"] == hashlib.sha256(canonical).hexdigest():
        _fixed(notice, "the codec's hash now matches", "bus/pulse.py ignoring meta.hash")


async def test_core_inmemory_bus_uses_the_documented_schema_id(notice: Notify) -> None:
    """Defect: Core's buses stamp telemetry.backpressure.FeedbackEvent; its docs say otherwise."""
    if not CAPS.core_inmemory_bus:
        skip_not_applicable("Core has no InMemoryBus")
    from market_data_core.events.adapters.inmem import InMemoryBus

    bus = InMemoryBus(enable_observability=False)
    await bus.publish(STREAM, _event())
    envelope = await anext(aiter(bus.subscribe(STREAM, group="g", consumer="c")))
    assert envelope.meta.schema_id in core.FEEDBACK_SCHEMA_IDS, "a third schema id"
    if envelope.meta.schema_id == "telemetry.FeedbackEvent":
        _fixed(
            notice,
            "InMemoryBus stamps the documented schema id",
            "core.FEEDBACK_SCHEMA_IDS accepting telemetry.backpressure.FeedbackEvent",
        )


@pytest.fixture
async def core_bus(redis_url: str, redis_namespace: str) -> Any:
    if not CAPS.core_redis_bus:
        skip_not_applicable("Core's RedisStreamsBus is not importable (no redis dependency)")
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
async def test_core_bus_round_trips_its_own_feedback_event(
    core_bus: Any, raw: Any, key: str, notice: Notify
) -> None:
    """Defect: Core's subscriber dead-letters the FeedbackEvents Core's publisher writes."""
    await raw.xgroup_create(key, "g", id="0", mkstream=True)  # so '$' cannot lose the entry
    event = _event()
    await core_bus.publish(STREAM, event)
    envelope = await _first(core_bus.subscribe(STREAM, group="g", consumer="c", block_ms=100))
    if envelope is None:
        assert await raw.xlen(f"{key}.dlq") == 1, "neither delivered nor dead-lettered"
        return
    assert envelope.payload == event
    _fixed(
        notice,
        "Core's bus delivers the FeedbackEvents it publishes (schema ids agree)",
        "bus/pulse.py accepting both schema ids (core.FEEDBACK_SCHEMA_IDS)",
    )


@pytest.mark.redis
async def test_core_bus_delivers_entries_published_before_subscribing(
    core_bus: Any, raw: Any, key: str, notice: Notify
) -> None:
    """Defect: Core's consumer groups start at '$': earlier entries are lost."""
    data = core.JsonCodec("v1").encode("telemetry.FeedbackEvent", _event())
    await raw.xadd(key, {"data": data})
    envelope = await _first(core_bus.subscribe(STREAM, group="g", consumer="c", block_ms=100))
    if envelope is not None:
        _fixed(
            notice,
            "consumer groups no longer start at '$'",
            "bus/redis_streams.py creating its group at id 0",
        )


@pytest.mark.redis
async def test_core_bus_ack_clears_the_pending_entry(
    core_bus: Any, raw: Any, key: str, notice: Notify
) -> None:
    """Defect: Core's ack() never sends XACK: the pending list grows."""
    await raw.xgroup_create(key, "g", id="0", mkstream=True)
    data = core.JsonCodec("v1").encode("telemetry.FeedbackEvent", _event())
    await raw.xadd(key, {"data": data})
    envelope = await _first(core_bus.subscribe(STREAM, group="g", consumer="c", block_ms=100))
    if envelope is None:  # not the defect under test: fail for real
        pytest.fail("Core's bus did not deliver an entry published after its group was created")
    await core_bus.ack(STREAM, envelope.id)
    pending = await raw.xpending(key, "g")
    assert pending["pending"] in (0, 1)
    if pending["pending"] == 0:
        _fixed(notice, "ack() sends XACK", "bus/redis_streams.py sending XACK itself")


@pytest.mark.redis
async def test_core_bus_fail_keeps_the_payload_in_the_dead_letters(
    core_bus: Any, raw: Any, key: str, notice: Notify
) -> None:
    """Defect: Core's fail() dead-letters an empty payload."""
    entry_id = await raw.xadd(key, {"data": "{}"})
    await core_bus.fail(STREAM, entry_id, "test")
    dead = await raw.xrange(f"{key}.dlq")
    assert dead, "fail() dead-lettered nothing"
    if dead[-1][1].get("data"):
        _fixed(
            notice,
            "fail() keeps the payload in the dead letters",
            "bus/redis_streams.py dead-lettering the original data itself",
        )
