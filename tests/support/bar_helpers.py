"""Helpers shared by the bar engine tests: frame builders and bar comparison."""

from __future__ import annotations

import math
from itertools import accumulate, pairwise

import polars as pl
from hypothesis import strategies as st

from market_data_pipeline.aggregation.resolution import Resolution
from market_data_pipeline.frames import BAR_SCHEMA

TickRow = tuple[str, int, float, float]  # symbol, ts_ns, price, size


def symbol_queues(
    draw: st.DrawFn, *, max_step: int, max_ticks: int, first: tuple[int, int]
) -> dict[str, list[TickRow]]:
    """Draw, for some of the symbols A, B, C, its ticks in event-time order (ties included):
    steps of 0 to ``max_step``, at most ``max_ticks``, starting within ``first``."""
    queues: dict[str, list[TickRow]] = {}
    for symbol in draw(st.lists(st.sampled_from(["A", "B", "C"]), min_size=1, unique=True)):
        steps = draw(st.lists(st.integers(0, max_step), max_size=max_ticks))
        times = accumulate(steps, initial=draw(st.integers(*first)))
        queues[symbol] = [
            (symbol, ts, draw(st.integers(1, 400)) / 8, float(draw(st.integers(0, 4))))
            for ts in times
        ]
    return queues


def ticks(rows: list[tuple[str, int, float, float]]) -> pl.DataFrame:
    """Build a tick frame from (symbol, ts_ns, price, size) rows."""
    return pl.DataFrame(rows, schema=["symbol", "ts_ns", "price", "size"], orient="row").cast(
        {"ts_ns": pl.Int64, "price": pl.Float64, "size": pl.Float64}
    )


def keyed(bars: pl.DataFrame) -> dict[tuple[str, str, int], dict[str, object]]:
    """Key bar rows by (resolution, symbol, window start); fail on a duplicate bar."""
    assert dict(bars.schema) == BAR_SCHEMA
    out: dict[tuple[str, str, int], dict[str, object]] = {}
    for row in bars.iter_rows(named=True):
        key = (row.pop("resolution"), row.pop("symbol"), row.pop("ts_ns"))
        assert key not in out, f"bar {key} emitted twice"
        out[key] = row
    return out


def assert_same_bars(
    got: dict[tuple[str, str, int], dict[str, object]],
    want: dict[tuple[str, str, int], dict[str, object]],
) -> None:
    """Compare keyed bars: exact prices, volume and trades; vwap up to float rounding."""
    assert sorted(got) == sorted(want)
    for key, row in want.items():
        other = dict(got[key])
        vwap, want_vwap = other.pop("vwap"), row["vwap"]
        assert other == {k: v for k, v in row.items() if k != "vwap"}, key
        if want_vwap is None:
            assert vwap is None, key
        else:
            assert isinstance(vwap, float) and isinstance(want_vwap, float), key
            assert math.isclose(vwap, want_vwap, rel_tol=1e-9), key


# Ticks as (symbol, ts_ns, price, size): few symbols, times that collide and go back, prices on a
# binary grid (sums exact), sizes that may be zero.
tick_rows = st.lists(
    st.tuples(
        st.sampled_from(["A", "B", "C"]),
        st.integers(-40, 160),
        st.integers(1, 400).map(lambda n: n / 8),
        st.integers(0, 4).map(float),
    ),
    max_size=60,
)


# Resolutions of a few nanoseconds: the small tick times above cross many windows.
resolution_sets = st.lists(st.integers(1, 50), min_size=1, max_size=3, unique=True).map(
    lambda sizes: [Resolution(f"{ns}ns", ns) for ns in sizes]
)


def split(rows: list[TickRow], cuts: list[int]) -> list[list[TickRow]]:
    """Cut ``rows`` into consecutive batches at ``cuts`` (each taken modulo the length)."""
    bounds = sorted({0, len(rows), *(c % (len(rows) + 1) for c in cuts)})
    return [rows[a:b] for a, b in pairwise(bounds)]
