"""Property tests: tick partials, by runs or by group-by, against a per-window reference."""

from __future__ import annotations

import math
import struct

import polars as pl
from bar_helpers import TickRow, symbol_queues, ticks
from bar_reference import Window, new_window, tick
from hypothesis import given, settings
from hypothesis import strategies as st

from market_data_pipeline.aggregation.aggregate import KEYS, PARTIAL_SCHEMA, combine, tick_partials
from market_data_pipeline.aggregation.aggregate import _joined as full_join

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


_RESOLUTIONS = {"r": 1, "s": 3}  # label -> window width


@st.composite
def partial_frames(draw: st.DrawFn, max_rows: int) -> pl.DataFrame:
    """Partials with unique keys over a few symbols and windows of two resolutions; pv and
    trades may be unknown (null), as for resampled bars."""
    keys = draw(
        st.lists(
            st.tuples(
                st.sampled_from(sorted(_RESOLUTIONS)), st.sampled_from("ABC"), st.integers(0, 5)
            ),
            unique=True,
            max_size=max_rows,
        )
    )
    price = st.floats(-5.0, 5.0, allow_nan=False)  # -0.0 included
    rows = []
    for label, symbol, window in keys:
        start = window * _RESOLUTIONS[label]
        open_ts, close_ts = sorted(draw(st.lists(st.integers(0, 3), min_size=2, max_size=2)))
        items = draw(st.integers(1, 9))
        rows.append(
            {
                "resolution": label,
                "symbol": symbol,
                "window": start,
                "window_end": start + _RESOLUTIONS[label],
                "open": draw(price),
                "open_ts": start + open_ts,
                "high": draw(price),
                "low": draw(price),
                "close": draw(price),
                "close_ts": start + close_ts,
                "volume": draw(st.floats(0.0, 1e6)),  # a group-by sum is never -0.0
                "pv": draw(st.none() | price),
                "trades": draw(st.none() | st.just(items)),
                "items": items,
            }
        )
    return pl.DataFrame(rows, schema=PARTIAL_SCHEMA)


def _bits(frame: pl.DataFrame) -> list[tuple[object, ...]]:
    """The rows in key order, floats as their bit patterns (so 0.0 and -0.0 differ)."""
    ordered = frame.sort(KEYS)
    columns = [
        [None if v is None else struct.pack("<d", v) for v in ordered.get_column(name)]
        if dtype == pl.Float64
        else ordered.get_column(name).to_list()
        for name, dtype in PARTIAL_SCHEMA.items()
    ]
    return list(zip(*columns, strict=True))


@settings(max_examples=300, deadline=None)
@given(state=partial_frames(max_rows=8), new=partial_frames(max_rows=36))
def test_combine_passing_new_windows_through_equals_the_full_join(
    state: pl.DataFrame, new: pl.DataFrame
) -> None:
    """Windows only the new side has skip the join when it is the larger side: bit for bit
    what the full join of both sides gives."""
    assert _bits(combine(state, new)) == _bits(full_join(state, new))
