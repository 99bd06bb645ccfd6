"""InMemoryBus and open_bus: delivery, broadcast, backlog, close."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from feedback_helpers import feedback

from market_data_pipeline.bus import InMemoryBus, open_bus
from market_data_pipeline.core import FeedbackPublisherProtocol
from market_data_pipeline.errors import BusError, UsageError


async def take(bus: InMemoryBus, n: int) -> list[Any]:
    got: list[Any] = []
    async for event in bus.subscribe():
        got.append(event)
        if len(got) == n:
            break
    return got


async def test_events_published_before_subscribing_are_delivered() -> None:
    bus = InMemoryBus()
    events = [feedback("s1", level, float(i)) for i, level in enumerate(["soft", "hard", "ok"])]
    for event in events:
        await bus.publish(event)
    assert await take(bus, 3) == events


async def test_every_subscriber_gets_every_event() -> None:
    bus = InMemoryBus()
    first = asyncio.create_task(take(bus, 2))
    second = asyncio.create_task(take(bus, 2))
    await asyncio.sleep(0)  # both subscribed
    events = [feedback("s1", "soft", 1.0), feedback("s1", "ok", 2.0)]
    for event in events:
        await bus.publish(event)
    assert await first == events
    assert await second == events


async def test_full_queue_makes_publish_wait() -> None:
    bus = InMemoryBus(queue_size=1)
    await bus.publish(feedback("s1", "soft", 1.0))
    blocked = asyncio.create_task(bus.publish(feedback("s1", "hard", 2.0)))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    got = await take(bus, 2)
    await blocked
    assert [e.level.value for e in got] == ["soft", "hard"]


async def test_close_ends_subscriptions_after_draining() -> None:
    bus = InMemoryBus()
    consumer = asyncio.create_task(take(bus, 10))
    await asyncio.sleep(0)
    await bus.publish(feedback("s1", "soft", 1.0))
    await bus.close()
    assert len(await consumer) == 1
    with pytest.raises(BusError):
        await bus.publish(feedback("s1", "ok", 2.0))


async def test_only_feedback_events_are_accepted() -> None:
    with pytest.raises(BusError):
        # Deliberately the wrong type: the runtime guard is what is tested.
        await InMemoryBus().publish({"level": "hard"})  # type: ignore[arg-type]


def test_bus_is_a_core_feedback_publisher() -> None:
    assert isinstance(InMemoryBus(), FeedbackPublisherProtocol)
    assert asyncio.iscoroutinefunction(InMemoryBus.publish)


def test_open_bus_picks_the_backend() -> None:
    assert isinstance(open_bus(None), InMemoryBus)
    assert isinstance(open_bus("memory://"), InMemoryBus)
    redis_bus = open_bus("redis://:s3cret@127.0.0.1:6379/0", namespace="x", group="g")
    assert "s3cret" not in redis_bus.describe()
    assert "x:telemetry.feedback" in redis_bus.describe()
    with pytest.raises(UsageError):
        open_bus("kafka://broker:9092")
