"""Property tests: tick partials, by runs or by group-by, against a per-window reference."""

from __future__ import annotations

import math

import polars as pl
from bar_helpers import TickRow, symbol_queues, ticks
from bar_reference import Window, new_window, tick
from hypothesis import given, settings
from hypothesis import strategies as st

from market_data_pipeline.aggregation.aggregate import PARTIAL_SCHEMA, tick_partials

WIDTH = 50  # window width, in the same units as the tick times


@st.composite
def runs_in_order(draw: st.DrawFn) -> list[TickRow]:
    """Runs of one symbol's ticks, each symbol's ticks in time order (ties included): long runs
    as a log fetch gives, or short ones as a time-ordered replay of many symbols gives."""
    longest = draw(st.sampled_from([2, 12, 60]))
    queues = symbol_queues(draw, max_step=9, max_ticks=120, first=(-100, 100))
    rows: list[TickRow] = []
    while any(queues.values()):
        symbol = draw(st.sampled_from(sorted(s for s, queue in queues.items() if queue)))
        size = draw(st.integers(1, longest))
        rows += queues[symbol][:size]
        del queues[symbol][:size]
    return rows


def reference(rows: list[TickRow]) -> dict[tuple[str, int], Window]:
    """Fold the rows one by one into their (symbol, window start), as ``bar_reference`` does."""
    out: dict[tuple[str, int], Window] = {}
    for row in rows:
        item = tick(*row)
        key = (item.symbol, item.ts_ns - item.ts_ns % WIDTH)
        if key in out:
            out[key].add(item)
        else:
            out[key] = new_window(item)
    return out


@settings(max_examples=300, deadline=None)
@given(rows=runs_in_order())
def test_tick_partials_equal_the_reference_whatever_the_runs(rows: list[TickRow]) -> None:
    frame = ticks(rows)
    start = pl.col("ts_ns") - pl.col("ts_ns") % WIDTH
    frame = frame.with_columns(start.alias("window"), (start + WIDTH).alias("window_end"))
    partials = tick_partials(frame, "r")
    assert dict(partials.schema) == PARTIAL_SCHEMA
    want = reference(rows)
    assert partials.height == len(want)
    for row in partials.iter_rows(named=True):
        key = (row.pop("symbol"), row.pop("window"))
        pv, expected = row.pop("pv"), want[key]
        assert expected.pv is not None and math.isclose(pv, expected.pv, rel_tol=1e-12), key
        # Exact otherwise: sizes are whole numbers, so volumes add up exactly in any order.
        assert row == {
            "resolution": "r",
            "window_end": key[1] + WIDTH,
            **{name: getattr(expected, name) for name in _EXACT},
        }, key


_EXACT = ("open", "open_ts", "high", "low", "close", "close_ts", "volume", "trades", "items")
