"""Replay frames at a multiple of their recorded speed by sleeping over event-time gaps."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import polars as pl

DEFAULT_SLICE_S = 0.01


class Pacer:
    """Release rows when their event time, scaled by ``1 / speed``, is due on the wall clock.

    The first row seen anchors both clocks. Event time is taken as the running maximum, so an
    out-of-order row never moves the schedule back. Frames are cut into slices of at most
    ``slice_s`` of wall time; each slice waits for its first row.
    """

    def __init__(self, speed: float, slice_s: float = DEFAULT_SLICE_S) -> None:
        if not speed > 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self.slice_ns = int(slice_s * 1e9)
        self._event0: int | None = None
        self._wall0 = 0.0
        self._seen_max: int | None = None

    async def pace(self, frame: pl.DataFrame) -> AsyncIterator[pl.DataFrame]:
        """Yield ``frame`` in slices, each after sleeping until it is due."""
        if frame.is_empty():
            return
        if self._event0 is None:
            self._event0 = int(frame["ts_ns"][0])
            self._wall0 = _now()
        due = self._due_ns(frame["ts_ns"])
        for start, length, due_ns in _slices(due, self.slice_ns):
            delay = self._wall0 + due_ns / 1e9 - _now()
            if delay > 0:
                await _sleep(delay)
            yield frame.slice(start, length)

    def _due_ns(self, ts_ns: pl.Series) -> pl.Series:
        running = ts_ns.cum_max()
        if self._seen_max is not None:
            running = running.clip(lower_bound=self._seen_max)
        self._seen_max = int(running[-1])
        assert self._event0 is not None
        return ((running - self._event0).clip(lower_bound=0) / self.speed).cast(pl.Int64)


def _now() -> float:
    return time.monotonic()


async def _sleep(delay: float) -> None:
    await asyncio.sleep(delay)


def _slices(due_ns: pl.Series, slice_ns: int) -> list[tuple[int, int, int]]:
    """Return (start, length, due of first row) for runs of rows in the same wall-time slice."""
    bucket = due_ns // max(slice_ns, 1)
    starts = (bucket != bucket.shift(1)).fill_null(True).arg_true()
    bounds = [*starts.to_list(), len(due_ns)]
    return [(a, b - a, int(due_ns[a])) for a, b in itertools.pairwise(bounds)]
