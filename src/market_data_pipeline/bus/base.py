"""The feedback bus interface: publish Core ``FeedbackEvent``s, subscribe to validated ones.

A bus is Core's ``FeedbackPublisher`` (``async publish(event)``). ``subscribe()`` yields only
valid events; anything else goes to the backend's dead-letter place with a reason.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import Any


class FeedbackBus(ABC):
    """Carries FeedbackEvents from stores to pipelines."""

    @abstractmethod
    async def publish(self, event: Any) -> None:
        """Publish one Core ``FeedbackEvent`` (Core's ``FeedbackPublisher.publish``)."""

    @abstractmethod
    def subscribe(self) -> AsyncIterator[Any]:
        """Yield Core ``FeedbackEvent``s as they arrive, until ``close()``."""

    @abstractmethod
    async def close(self) -> None:
        """Stop subscriptions and release connections."""
