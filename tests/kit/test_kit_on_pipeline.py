"""The conformance kit run on this project's own implementations, as another repository would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from market_data_contracts import kit
from market_data_contracts.kit.plugin import (  # noqa: F401 - fixtures, as the plugin gives
    make_feedback_event,
    make_rate_adjustment,
)
from market_data_pipeline.bus.memory import InMemoryBus
from market_data_pipeline.bus.redis_streams import RedisStreamBus
from market_data_pipeline.flow.rate_gate import RateGate


class TestRateGate(kit.BaseRateControllerTests):
    @pytest.fixture
    def controller(self) -> RateGate:
        return RateGate("kit", 1000.0)

    @pytest.fixture
    def current_scale(self, controller: RateGate) -> Callable[[], float]:
        return lambda: controller.scale


class TestInMemoryBus(kit.BaseFeedbackPublisherTests):
    @pytest.fixture
    async def publisher(self) -> AsyncIterator[InMemoryBus]:
        bus = InMemoryBus()
        yield bus
        await bus.close()

    @pytest.fixture
    async def read_back(
        self, publisher: InMemoryBus
    ) -> AsyncIterator[Callable[[], Awaitable[list[Any]]]]:
        received: list[Any] = []
        arrived = asyncio.Event()

        async def collect() -> None:
            async for event in publisher.subscribe():
                received.append(event)
                arrived.set()

        task = asyncio.create_task(collect())
        await asyncio.sleep(0)  # let the subscription start before anything is published

        async def read() -> list[Any]:
            async with asyncio.timeout(10):
                while not received:
                    await arrived.wait()
            return list(received)

        yield read
        task.cancel()


@pytest.mark.redis
class TestRedisStreamBus(kit.BaseFeedbackPublisherTests):
    @pytest.fixture
    async def publisher(self, redis_url: str, redis_namespace: str) -> AsyncIterator[Any]:
        bus = RedisStreamBus(redis_url, namespace=redis_namespace)
        yield bus
        await bus.close()

    @pytest.fixture
    def read_back(self, redis_url: str, publisher: RedisStreamBus) -> Any:
        return kit.redis_reader(redis_url, publisher.key)
