"""Per-provider rate gate: a token bucket that implements Core's ``RateController``.

The gate meters ticks at ``base_rate * scale`` ticks per second. ``apply()`` (a Core
``RateAdjustment``) changes the scale at once: waiters are woken and recompute their wait, so a
new scale takes effect on the next tick, not after the current second. Scale 0.0 is a real
pause: no tick passes until the scale rises.

An unthrottled gate (``base_rate=None``) passes everything while the scale is 1.0. When it is
asked to slow down, it has no configured rate to scale, so it scales the rate it measured over
the last second instead, and goes back to unthrottled when the scale returns to 1.0.

Tokens may go into debt: a request for more tokens than the burst is granted once the bucket is
not negative, and the debt delays the next request. The long-run rate is therefore exact,
whatever the request sizes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

import polars as pl

from .. import core

# How much of a second one metered slice may hold: small enough that a rate change is seen
# within ~10 ms, large enough that per-slice overhead stays negligible.
SLICE_S = 0.01
BURST_S = 0.1
_RATE_WINDOW_S = 1.0
_MIN_WAIT_S = 1e-6


class TokenBucket:
    """Tokens earned at a rate, capped at ``BURST_S`` seconds' worth; debt allowed."""

    def __init__(self, now: float) -> None:
        self.tokens = 0.0
        self.stamp = now

    def refill(self, rate: float | None, now: float) -> None:
        """Credit the tokens earned at ``rate`` since the last call."""
        if rate is not None:
            self.tokens = min(burst(rate), self.tokens + (now - self.stamp) * rate)
        self.stamp = now

    def cap(self, rate: float | None) -> None:
        """Drop tokens above the burst of a new (lower) rate."""
        if rate is not None:
            self.tokens = min(self.tokens, burst(rate))

    def take(self, n: int, rate: float, now: float) -> float:
        """Take ``n`` tokens and return 0.0, or return how long to wait before trying again."""
        self.refill(rate, now)
        if self.tokens >= 0.0:
            self.tokens -= n
            return 0.0
        # Never ask for a wait too short to move a float clock, or a caller could spin forever.
        return max(-self.tokens / rate, _MIN_WAIT_S)


def burst(rate: float) -> float:
    """Return the bucket size for ``rate``: ``BURST_S`` seconds of ticks, at least one."""
    return max(1.0, rate * BURST_S)


class RateGate:
    """Meter one provider's ticks; Core ``RateController`` through ``apply``."""

    def __init__(
        self,
        provider: str,
        base_rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if base_rate is not None and base_rate <= 0:
            raise ValueError(f"base_rate must be positive or None, got {base_rate}")
        self.provider = provider
        self.base_rate = base_rate
        self._clock = clock
        self._scale = 1.0
        self._level: core.BackpressureLevel = core.BackpressureLevel.ok
        self._bucket = TokenBucket(clock())
        self._changed = asyncio.Event()
        self._frozen_rate: float | None = None
        self._window_start = clock()
        self._window_count = 0
        self._measured_rate: float | None = None
        self.ticks_passed = 0
        self.adjustments = 0

    @property
    def scale(self) -> float:
        """The scale in force (0.0 paused .. 1.0 full rate)."""
        return self._scale

    @property
    def level(self) -> core.BackpressureLevel:
        """The ``BackpressureLevel`` given as the reason of the last adjustment."""
        return self._level

    @property
    def rate(self) -> float | None:
        """Ticks per second allowed now; None when unthrottled."""
        if self._scale >= 1.0 and self.base_rate is None:
            return None
        base = self.base_rate if self.base_rate is not None else self._frozen_rate
        if base is None:
            return None
        return base * self._scale

    async def apply(self, adj: core.RateAdjustment) -> None:
        """Apply a Core ``RateAdjustment`` for this provider; effective from the next tick."""
        if adj.provider != self.provider:
            raise ValueError(f"adjustment for {adj.provider!r} applied to gate {self.provider!r}")
        self.set_scale(float(adj.scale), adj.reason)

    def set_scale(self, scale: float, level: core.BackpressureLevel | None = None) -> None:
        """Set the scale directly (``apply`` without a Core model)."""
        if not 0.0 <= scale <= 1.0:
            raise ValueError(f"scale must be within [0, 1], got {scale}")
        self._bucket.refill(self.rate, self._clock())  # tokens so far were earned at the old rate
        if scale < 1.0 and self.base_rate is None and self._frozen_rate is None:
            self._frozen_rate = self._measured_rate or max(self._window_rate(), 1.0)
        if scale >= 1.0:
            self._frozen_rate = None
        if scale != self._scale:
            self.adjustments += 1
        self._scale = scale
        if level is not None:
            self._level = level
        self._bucket.cap(self.rate)
        self._changed.set()
        self._changed = asyncio.Event()

    async def acquire(self, n: int) -> None:
        """Wait until ``n`` ticks may pass; blocks indefinitely while paused."""
        while True:
            rate = self.rate
            if self._scale <= 0.0:
                await self._changed.wait()
                continue
            if rate is None:
                self._count(n)
                return
            wait_s = self._bucket.take(n, rate, self._clock())
            if wait_s == 0.0:
                self._count(n)
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=wait_s)

    async def meter(
        self, frame: pl.DataFrame, *, whole: bool = False
    ) -> AsyncIterator[pl.DataFrame]:
        """Yield ``frame`` in slices as tokens allow (the whole frame when unthrottled).

        With ``whole``, the slices are metered all the same (a new scale is seen within a
        slice) but the frame is yielded once, after its last slice passed: for a source with
        no pace of its own, where the gate only slows it down for the store, and each slice
        would cost the bar engine a pass over its open windows.
        """
        offset = 0
        while offset < frame.height:
            rate = self.rate
            if rate is None and self._scale > 0.0:
                size = frame.height - offset
            else:
                size = max(1, int((rate or 0.0) * SLICE_S))
            part = frame.slice(offset, size)
            await self.acquire(part.height)
            offset += part.height
            if not whole:
                yield part
        if whole and frame.height:
            yield frame

    def _count(self, n: int) -> None:
        self.ticks_passed += n
        self._window_count += n
        now = self._clock()
        if now - self._window_start >= _RATE_WINDOW_S:
            self._measured_rate = self._window_rate(now)
            self._window_start = now
            self._window_count = 0

    def _window_rate(self, now: float | None = None) -> float:
        elapsed = (now if now is not None else self._clock()) - self._window_start
        return self._window_count / elapsed if elapsed > 0 else 0.0
