"""One feedback bus over several streams: ``mdp run --feedback-stream A --feedback-stream B``.

Publishing goes to the first member (this run's own write queue reports there). ``subscribe()``
merges the members' subscriptions in arrival order. Each member hands over one event at a time and
asks for the next only after the caller has handled it, so a member's acknowledgement still means
"handled", exactly as with a single stream. The bus counts as connected while every member is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence
from enum import Enum, auto
from typing import TYPE_CHECKING

from .base import FeedbackBus


class _Done(Enum):
    """The marker a member's pump hands over when its subscription ended."""

    DONE = auto()


_DONE = _Done.DONE

if TYPE_CHECKING:
    from typing import TypeAlias

    from ..core import FeedbackEvent

    # What a member's pump hands over: an event with the future to set once it was handled,
    # the error that ended its subscription, or the end marker.
    _Handoff: TypeAlias = asyncio.Queue[
        tuple[FeedbackEvent | BaseException | _Done, asyncio.Future[None] | None]
    ]


class FanInBus(FeedbackBus):
    """Merge the subscriptions of several buses; publish to the first."""

    def __init__(self, members: Sequence[FeedbackBus]) -> None:
        if not members:
            raise ValueError("FanInBus needs at least one member bus")
        super().__init__()
        self.members = tuple(members)
        self._connected = all(member.connected for member in self.members)
        for member in self.members:
            member.on_state_change(self._member_changed)

    def describe(self) -> str:
        """Return every member's description, separated by ``; ``."""
        return "; ".join(member.describe() for member in self.members)

    async def verify(self) -> None:
        """Verify every member (each refuses credentials its server rejects)."""
        for member in self.members:
            await member.verify()

    async def publish(self, event: FeedbackEvent) -> None:
        """Publish one FeedbackEvent to the first member."""
        await self.members[0].publish(event)

    async def subscribe(self) -> AsyncGenerator[FeedbackEvent, None]:
        """Yield events from every member until all their subscriptions end."""
        handoff: _Handoff = asyncio.Queue()
        pumps = [asyncio.create_task(self._pump(m, handoff)) for m in self.members]
        running = len(pumps)
        try:
            while running:
                item, handled = await handoff.get()
                if item is _DONE:
                    running -= 1
                    continue
                if isinstance(item, BaseException):
                    raise item
                try:
                    yield item
                finally:
                    if handled is not None and not handled.done():
                        handled.set_result(None)
        finally:
            for pump in pumps:
                pump.cancel()
            for pump in pumps:
                with contextlib.suppress(asyncio.CancelledError):
                    await pump

    @staticmethod
    async def _pump(member: FeedbackBus, handoff: _Handoff) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with contextlib.aclosing(member.subscribe()) as events:
                async for event in events:
                    handled: asyncio.Future[None] = loop.create_future()
                    await handoff.put((event, handled))
                    await handled  # the member acknowledges only what was handled
        except Exception as exc:  # surfaced to the subscriber, which decides
            await handoff.put((exc, None))
        finally:
            handoff.put_nowait((_DONE, None))

    async def close(self) -> None:
        """Close every member (their subscriptions end, then this one)."""
        for member in self.members:
            await member.close()

    def _member_changed(self, _connected: bool) -> None:
        self._set_connected(all(member.connected for member in self.members))
