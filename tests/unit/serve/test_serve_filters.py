"""Replay filters keep exactly the rows a plain loop keeps, and count every other row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import polars as pl
from hypothesis import given
from hypothesis import strategies as st

from market_data_pipeline.serve.filters import (
    AT_OR_AFTER_END,
    BEFORE_START,
    NOT_IN_SYMBOLS,
    FilteredSource,
)
from market_data_pipeline.sources.base import TickSource

SYMBOLS = ["A", "B", "C"]


class Frames(TickSource):
    def __init__(self, frames: list[pl.DataFrame]) -> None:
        super().__init__("replay", "trades")
        self.frames = frames

    async def batches(self) -> AsyncIterator[pl.DataFrame]:
        for frame in self.frames:
            yield frame


rows = st.lists(st.tuples(st.sampled_from(SYMBOLS), st.integers(0, 100)), max_size=60)


@given(
    parts=st.lists(rows, max_size=4),
    symbols=st.none() | st.lists(st.sampled_from(SYMBOLS), min_size=1),
    start=st.none() | st.integers(0, 100),
    end=st.none() | st.integers(0, 100),
)
def test_filters_match_a_plain_loop(
    parts: list[list[tuple[str, int]]],
    symbols: list[str] | None,
    start: int | None,
    end: int | None,
) -> None:
    frames = [
        pl.DataFrame({"symbol": [s for s, _ in p], "ts_ns": [t for _, t in p]}, strict=False)
        for p in parts
    ]
    source = FilteredSource(Frames(frames), symbols=symbols, start_ns=start, end_ns=end)

    async def collect() -> list[tuple[str, int]]:
        return [r for f in [f async for f in source.batches()] for r in f.rows()]

    kept = asyncio.run(collect())
    expected: list[tuple[str, int]] = []
    reasons = {NOT_IN_SYMBOLS: 0, BEFORE_START: 0, AT_OR_AFTER_END: 0}
    for symbol, ts in (row for part in parts for row in part):
        if symbols is not None and symbol not in symbols:
            reasons[NOT_IN_SYMBOLS] += 1
        elif start is not None and ts < start:
            reasons[BEFORE_START] += 1
        elif end is not None and ts >= end:
            reasons[AT_OR_AFTER_END] += 1
        else:
            expected.append((symbol, ts))
    assert kept == expected
    assert source.bad_reasons == {k: v for k, v in reasons.items() if v}
    assert source.bad_rows + len(kept) == sum(len(p) for p in parts)
