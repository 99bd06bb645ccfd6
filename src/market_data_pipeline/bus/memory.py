"""In-process feedback bus: the embedded default, no server needed.

Every subscriber gets every event (a broadcast, like one Redis consumer group per pipeline).
Events published before anyone subscribed wait for the first subscriber, the way a Redis group
created at id 0 delivers earlier entries. Queues are bounded: ``publish`` waits for room rather
than dropping an event.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from enum import Enum, auto

from ..core import FeedbackEvent
from ..errors import BusError
from .base import FeedbackBus

DEFAULT_QUEUE_SIZE = 10_000


class _Closed(Enum):
    """The marker ``close()`` queues to wake a waiting subscriber."""

    CLOSED = auto()


_CLOSED = _Closed.CLOSED


class InMemoryBus(FeedbackBus):
    """Broadcast Core ``FeedbackEvent``s to every subscriber in this process."""

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        super().__init__()
        self._queue_size = queue_size
        self._subscribers: list[asyncio.Queue[FeedbackEvent | _Closed]] = []
        self._waiting: asyncio.Queue[FeedbackEvent | _Closed] | None = asyncio.Queue(queue_size)
        self._closed = False

    def describe(self) -> str:
        """Return ``memory://``."""
        return "memory://"

    async def publish(self, event: FeedbackEvent) -> None:
        """Deliver ``event`` (a Core ``FeedbackEvent``) to every subscriber."""
        if self._closed:
            raise BusError("the feedback bus is closed")
        if not isinstance(event, FeedbackEvent):
            raise BusError(f"expected a FeedbackEvent, got {type(event).__name__}")
        if self._waiting is not None:
            await self._waiting.put(event)
            return
        for queue in list(self._subscribers):
            await queue.put(event)

    async def subscribe(self) -> AsyncGenerator[FeedbackEvent, None]:
        """Yield every event published from now on (the first subscriber also gets earlier ones).

        After ``close()`` a subscription only drains what was already published, then ends.
        """
        queue = self._waiting if self._waiting is not None else asyncio.Queue(self._queue_size)
        self._waiting = None
        self._subscribers.append(queue)
        try:
            while not (self._closed and queue.empty()):
                item = await queue.get()
                if item is _CLOSED:
                    return
                yield item
        finally:
            self._subscribers.remove(queue)

    async def close(self) -> None:
        """End every subscription; later publishes raise ``BusError``."""
        self._closed = True
        for queue in list(self._subscribers):
            # A full queue needs no marker: its subscriber drains it, then sees the closed flag.
            if not queue.full():
                queue.put_nowait(_CLOSED)
