"""Test doubles for the feedback loop: a manual clock, a recording publisher, event builder."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from market_data_pipeline.core import BackpressureLevel, FeedbackEvent


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingPublisher:
    """A Core FeedbackPublisher that keeps what it was given; can fail the first N calls."""

    def __init__(self, fail_first: int = 0) -> None:
        self.events: list[Any] = []
        self.fail_left = fail_first
        self._published = asyncio.Event()

    async def publish(self, event: Any) -> None:
        if self.fail_left > 0:
            self.fail_left -= 1
            raise ConnectionError("bus down")
        self.events.append(event)
        self._published.set()

    async def wait_until(self, predicate: Callable[[RecordingPublisher], bool]) -> None:
        """Wait (at most 5 s) until ``predicate(self)`` holds."""
        async with asyncio.timeout(5):
            while not predicate(self):
                self._published.clear()
                await self._published.wait()

    @property
    def levels(self) -> list[str]:
        return [BackpressureLevel(e.level).value for e in self.events]


def feedback(coordinator: str, level: str, ts: float, size: int = 1, capacity: int = 100) -> Any:
    return FeedbackEvent(
        coordinator_id=coordinator,
        queue_size=size,
        capacity=capacity,
        level=BackpressureLevel(level),
        ts=ts,
    )
