"""Property tests: tick partials, by runs or by group-by, against a per-window reference."""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import accumulate

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from market_data_pipeline.bars.aggregate import PARTIAL_SCHEMA, tick_partials

TickRow = tuple[str, int, float, float]
WIDTH = 50  # window width, in the same units as the tick times


@st.composite
def runs_in_order(draw: st.DrawFn) -> list[TickRow]:
    """Runs of one symbol's ticks, each symbol's ticks in time order (ties included): long runs
    as a log fetch gives, or short ones as a time-ordered replay of many symbols gives."""
    longest = draw(st.sampled_from([2, 12, 60]))
    queues: dict[str, list[TickRow]] = {}
    for symbol in draw(st.lists(st.sampled_from(["A", "B", "C"]), min_size=1, unique=True)):
        steps = draw(st.lists(st.integers(0, 9), max_size=120))
        times = accumulate(steps, initial=draw(st.integers(-100, 100)))
        queues[symbol] = [
            (symbol, ts, draw(st.integers(1, 400)) / 8, float(draw(st.integers(0, 4))))
            for ts in times
        ]
    rows: list[TickRow] = []
    while any(queues.values()):
        symbol = draw(st.sampled_from(sorted(s for s, queue in queues.items() if queue)))
        size = draw(st.integers(1, longest))
        rows += queues[symbol][:size]
        del queues[symbol][:size]
    return rows


@dataclass
class Window:
    """One window's bar so far, as the reference folds ticks in one by one."""

    open: float
    open_ts: int
    high: float
    low: float
    close: float
    close_ts: int
    volume: float
    pv: float
    trades: int

    def add(self, ts: int, price: float, size: float) -> None:
        if ts < self.open_ts:  # the earliest time opens; the first of equal times stays
            self.open, self.open_ts = price, ts
        if ts >= self.close_ts:  # the latest time closes; the last of equal times wins
            self.close, self.close_ts = price, ts
        self.high, self.low = max(self.high, price), min(self.low, price)
        self.volume += size
        self.pv += price * size
        self.trades += 1


def reference(rows: list[TickRow]) -> dict[tuple[str, int], Window]:
    """Fold the rows one by one into their (symbol, window start)."""
    out: dict[tuple[str, int], Window] = {}
    for symbol, ts, price, size in rows:
        key = (symbol, ts - ts % WIDTH)
        if key in out:
            out[key].add(ts, price, size)
        else:
            out[key] = Window(price, ts, price, price, price, ts, size, price * size, 1)
    return out


@settings(max_examples=300, deadline=None)
@given(rows=runs_in_order())
def test_tick_partials_equal_the_reference_whatever_the_runs(rows: list[TickRow]) -> None:
    frame = pl.DataFrame(rows, schema=["symbol", "ts_ns", "price", "size"], orient="row")
    frame = frame.cast({"ts_ns": pl.Int64, "price": pl.Float64, "size": pl.Float64})
    start = pl.col("ts_ns") - pl.col("ts_ns") % WIDTH
    frame = frame.with_columns(start.alias("window"), (start + WIDTH).alias("window_end"))
    partials = tick_partials(frame, "r")
    assert dict(partials.schema) == PARTIAL_SCHEMA
    want = reference(rows)
    assert partials.height == len(want)
    for row in partials.iter_rows(named=True):
        key = (row.pop("symbol"), row.pop("window"))
        pv, expected = row.pop("pv"), want[key]
        assert math.isclose(pv, expected.pv, rel_tol=1e-12), key
        # Exact otherwise: sizes are whole numbers, so volumes add up exactly in any order.
        assert row == {
            "resolution": "r",
            "window_end": key[1] + WIDTH,
            **{name: getattr(expected, name) for name in _EXACT},
            "items": expected.trades,
        }, key


_EXACT = ("open", "open_ts", "high", "low", "close", "close_ts", "volume", "trades")
