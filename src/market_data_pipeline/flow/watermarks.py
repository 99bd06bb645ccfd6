"""Store side of backpressure: turn write-queue depth into Core ``FeedbackEvent``s.

``WatermarkMonitor.observe(depth, capacity)`` is called by the write queue after every put and
take. It is synchronous and cheap: it compares the fill ratio with enter/exit thresholds and, on
a level change only, builds one ``FeedbackEvent`` and hands it to an owned task that publishes
events in order through the bus (Core's ``FeedbackPublisher``).

Hysteresis: a level is entered at its ``*_enter`` ratio and left below its ``*_exit`` ratio.
Dwell: a move to a LESS severe level happens only once the lower reading has held for
``dwell_s`` without interruption. A move to a MORE severe level is immediate: an overloaded store
needs the producers slowed now, and delaying the cure only lets the queue fill further; flapping
is prevented on the way down, which bounds the cycle rate to one per ``dwell_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..core import LEVEL_SEVERITY, BackpressureLevel, FeedbackEvent
from ..defaults import (
    DEFAULT_DWELL_S,
    DEFAULT_HARD_ENTER,
    DEFAULT_HARD_EXIT,
    DEFAULT_SOFT_ENTER,
    DEFAULT_SOFT_EXIT,
)
from ..errors import UsageError

log = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_S = 1.0
RETRY_FIRST_S = 0.05
RETRY_CAP_S = 2.0


class DepthObserver(Protocol):
    """Something told about the write queue's depth after every put and every take."""

    def observe(self, depth: int, capacity: int) -> None:
        """Take note of ``depth`` rows out of ``capacity`` (sync and cheap)."""


class Publisher(Protocol):
    """Core's ``FeedbackPublisher``."""

    async def publish(self, event: FeedbackEvent) -> None: ...


@dataclass(frozen=True)
class Watermarks:
    """Fill ratios (of capacity) at which levels are entered and left, plus the dwell time."""

    soft_enter: float = DEFAULT_SOFT_ENTER
    soft_exit: float = DEFAULT_SOFT_EXIT
    hard_enter: float = DEFAULT_HARD_ENTER
    hard_exit: float = DEFAULT_HARD_EXIT
    dwell_s: float = DEFAULT_DWELL_S

    def __post_init__(self) -> None:
        ratios = (self.soft_exit, self.soft_enter, self.hard_exit, self.hard_enter)
        if not all(0.0 < r <= 1.0 for r in ratios):
            raise UsageError(f"watermark ratios must be in (0, 1]: {self}")
        if not (self.soft_exit < self.soft_enter and self.hard_exit < self.hard_enter):
            raise UsageError(f"each exit ratio must be below its enter ratio: {self}")
        if not (self.soft_enter <= self.hard_enter and self.soft_exit <= self.hard_exit):
            raise UsageError(f"soft ratios must not exceed hard ratios: {self}")
        if not (self.dwell_s >= 0 and math.isfinite(self.dwell_s)):
            raise UsageError(f"dwell_s must be a finite number >= 0: {self.dwell_s}")

    def target(self, current: BackpressureLevel, ratio: float) -> BackpressureLevel:
        """Return the level ``ratio`` calls for, starting from ``current`` (no dwell applied)."""
        ok, soft, hard = BackpressureLevel.ok, BackpressureLevel.soft, BackpressureLevel.hard
        if ratio >= self.hard_enter:
            return hard
        if current is hard and ratio >= self.hard_exit:
            return hard
        if ratio >= self.soft_enter:
            return soft
        if current is not ok and ratio >= self.soft_exit:
            return soft
        return ok


class WatermarkMonitor:
    """Publish a ``FeedbackEvent`` on every level change of one write queue, and a heartbeat."""

    def __init__(
        self,
        publisher: Publisher,
        *,
        coordinator_id: str,
        watermarks: Watermarks | None = None,
        heartbeat_s: float | None = DEFAULT_HEARTBEAT_S,
        source: str = "store",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._publisher = publisher
        self.coordinator_id = coordinator_id
        self.watermarks = watermarks or Watermarks()
        self._heartbeat_s = heartbeat_s
        self._source = source
        self._clock = clock
        self._level = BackpressureLevel.ok
        self._depth = 0
        self._capacity = 0
        self._lower_since: float | None = None
        self._recheck: asyncio.TimerHandle | None = None
        self._pending: deque[FeedbackEvent] = deque()
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.published = 0
        self.transitions = 0

    @property
    def level(self) -> BackpressureLevel:
        """Return the current level."""
        return self._level

    @property
    def pending(self) -> int:
        """Return how many events wait to be published."""
        return len(self._pending)

    async def start(self) -> None:
        """Start the publishing task (events observed before this are kept and sent first)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"watermarks-{self.coordinator_id}")

    def observe(self, depth: int, capacity: int) -> None:
        """Take note of the queue's depth; enqueue a FeedbackEvent if the level changes."""
        self._depth, self._capacity = depth, capacity
        if capacity <= 0:
            return
        self._evaluate(self._clock())

    def _evaluate(self, now: float) -> None:
        target = self.watermarks.target(self._level, self._depth / self._capacity)
        if target is self._level:
            self._lower_since = None
            return
        if LEVEL_SEVERITY[target] > LEVEL_SEVERITY[self._level]:
            self._change(target)
            return
        if self._lower_since is None:
            self._lower_since = now
        waited = now - self._lower_since
        if waited >= self.watermarks.dwell_s:
            self._change(target)
        else:
            self._schedule_recheck(self.watermarks.dwell_s - waited)

    def _schedule_recheck(self, delay: float) -> None:
        # The queue may go quiet below the exit mark: nobody would call observe() again, so a
        # timer re-reads the last depth once the dwell time is over.
        if self._recheck is not None:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: the next observe() decides
            self._recheck = asyncio.get_running_loop().call_later(delay, self._on_recheck)

    def _on_recheck(self) -> None:
        self._recheck = None
        if self._lower_since is not None and self._capacity > 0:
            self._evaluate(self._clock())

    def _change(self, level: BackpressureLevel) -> None:
        self._level = level
        self._lower_since = None
        self.transitions += 1
        self._enqueue()

    def _enqueue(self) -> None:
        self._pending.append(
            FeedbackEvent(
                coordinator_id=self.coordinator_id,
                queue_size=max(self._depth, 0),
                capacity=self._capacity,
                level=self._level,
                source=self._source,
                ts=time.time(),
            )
        )
        self._wakeup.set()

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                await self._wait_or_heartbeat()
            while self._pending:
                await self._publish_head()

    async def _wait_or_heartbeat(self) -> None:
        self._wakeup.clear()
        try:
            async with asyncio.timeout(self._heartbeat_s):
                await self._wakeup.wait()
        except TimeoutError:
            if self._capacity > 0:  # nothing to report before the first observation
                self._enqueue()

    async def _publish_head(self) -> None:
        delay = RETRY_FIRST_S
        failing = False
        while True:
            try:
                await self._publisher.publish(self._pending[0])
            except Exception as exc:  # any bus failure: keep the event, retry in order
                if not failing:
                    log.warning("feedback publish failed, retrying: %s", exc)
                    failing = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_CAP_S)
                continue
            if failing:
                log.info("feedback publish recovered")
            self._pending.popleft()
            self.published += 1
            return

    async def aclose(self, timeout_s: float = 5.0) -> int:
        """Publish what is pending (up to ``timeout_s``), stop; return events left unpublished."""
        self._closing = True
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None
        self._wakeup.set()
        if self._task is None and self._pending:
            await self.start()
        if self._task is not None:
            try:
                async with asyncio.timeout(timeout_s):
                    await asyncio.shield(self._task)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        left = len(self._pending)
        if left:
            log.warning("%d feedback events of %s were not published", left, self.coordinator_id)
        return left
