"""market-data-store's publishers against the kit, written as the store's repository would."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from market_data_store.coordinator.feedback import feedback_bus
from market_data_store.pulse import FeedbackPublisherService, PulseConfig

from market_data_contracts import kit

REDIS_URL = os.environ.get("MDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def namespace() -> str:
    return os.environ.get("KIT_NAMESPACE", "kit") + "-" + uuid.uuid4().hex[:8]


@pytest.fixture
async def service(
    namespace: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FeedbackPublisherService]:
    # The store's documented set-up: its settings come from the environment. (PulseConfig(ns=...)
    # alone is not enough: Core's bus takes the key prefix from MD_NAMESPACE.)
    monkeypatch.setenv("EVENT_BUS_BACKEND", "redis")
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("MD_NAMESPACE", namespace)
    service = FeedbackPublisherService(PulseConfig())
    await service.start()
    yield service
    await service.stop()
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{namespace}:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def store_stream(namespace: str) -> Callable[[], Awaitable[list[Any]]]:
    # The key the store writes to with its default layout: {ns}:{ns}.telemetry.feedback.
    return kit.redis_reader(REDIS_URL, f"{namespace}:{namespace}.telemetry.feedback")


class TestFeedbackPublisherService(kit.BaseFeedbackPublisherTests):
    """The store's Pulse publisher itself, driven through its own publish_feedback."""

    @pytest.fixture
    def publisher(self, service: FeedbackPublisherService) -> Any:
        return service

    @pytest.fixture
    def publish(self, service: FeedbackPublisherService) -> Callable[[Any], Awaitable[None]]:
        async def publish(event: Any) -> None:
            await service.publish_feedback(
                event.coordinator_id, event.queue_size, event.capacity, event.level
            )

        return publish

    @pytest.fixture
    def read_back(self, store_stream: Any) -> Any:
        return store_stream


class TestStoreFeedbackBus(kit.BaseFeedbackPublisherTests):
    """The store's in-process FeedbackBus, with the Pulse publisher forwarding it to Redis."""

    @pytest.fixture
    def publisher(self, service: FeedbackPublisherService) -> Any:
        return feedback_bus()

    @pytest.fixture
    def read_back(self, store_stream: Any) -> Any:
        return store_stream
