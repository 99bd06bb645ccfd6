"""The feedback bus interface: publish Core ``FeedbackEvent``s, subscribe to validated ones.

A bus is Core's ``FeedbackPublisher`` (``async publish(event)``). ``subscribe()`` yields only
valid events; anything else goes to the backend's dead-letter place with a reason.

A bus also reports whether it can currently hear publishers (``connected``) and calls the
listeners registered with ``on_state_change`` when that flips, so the feedback handler can apply
its fallback while a remote bus is unreachable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Core is imported when a bus is used, not when this module is
    from ..core import FeedbackEvent

StateListener = Callable[[bool], None]


class FeedbackBus(ABC):
    """Carries FeedbackEvents from stores to pipelines."""

    def __init__(self) -> None:
        self._connected = True
        self._listeners: list[StateListener] = []

    @abstractmethod
    async def publish(self, event: FeedbackEvent) -> None:
        """Publish one Core ``FeedbackEvent`` (Core's ``FeedbackPublisher.publish``)."""

    @abstractmethod
    def subscribe(self) -> AsyncGenerator[FeedbackEvent, None]:
        """Yield Core ``FeedbackEvent``s as they arrive, until ``close()`` (or ``aclose()``)."""

    @abstractmethod
    async def close(self) -> None:
        """Stop subscriptions and release connections."""

    @abstractmethod
    def describe(self) -> str:
        """Return where this bus lives, without any password (for logs and summaries)."""

    async def verify(self) -> None:  # noqa: B027 - only remote buses have anything to check
        """Raise ``UsageError`` if the bus rejects this process (bad credentials); else nothing.

        An unreachable bus is not an error here: subscribers retry and the fallback applies.
        """

    @property
    def connected(self) -> bool:
        """Return whether the subscriber currently reaches the bus."""
        return self._connected

    def on_state_change(self, listener: StateListener) -> None:
        """Call ``listener(connected)`` every time the subscriber connects or disconnects."""
        self._listeners.append(listener)

    def _set_connected(self, connected: bool) -> bool:
        """Record the connection state; return True when it changed (listeners were called)."""
        if connected == self._connected:
            return False
        self._connected = connected
        for listener in list(self._listeners):
            listener(connected)
        return True
