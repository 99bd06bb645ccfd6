"""Property test: the PostgreSQL staging payload holds the last row of each key, in key order."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from market_data_pipeline.frames import empty_bars
from market_data_pipeline.sinks.postgres import KEY, encode_csv

_MINUTE = 60_000_000_000


@st.composite
def bar_batches(draw: st.DrawFn) -> pl.DataFrame:
    """Bars in arrival order, some keys repeated (a window written again within a batch)."""
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["A", "B", "BRK.B"]),
                st.sampled_from(["1m", "5m"]),
                st.integers(0, 3),
                st.floats(1, 100, allow_nan=False),
            ),
            max_size=12,
        )
    )
    base = empty_bars()
    frame = pl.DataFrame(
        {
            "symbol": [r[0] for r in rows],
            "resolution": [r[1] for r in rows],
            "ts_ns": [r[2] * _MINUTE for r in rows],
            "open": [r[3] for r in rows],
        },
        schema={
            "symbol": pl.String,
            "resolution": pl.String,
            "ts_ns": pl.Int64,
            "open": pl.Float64,
        },
    )
    filled = frame.with_columns(
        *(pl.col("open").alias(name) for name in ("high", "low", "close", "volume", "vwap")),
        pl.int_range(pl.len(), dtype=pl.Int64).alias("trades"),
        (pl.col("ts_ns") + _MINUTE).alias("end_ts_ns"),
        pl.lit(False).alias("incomplete"),
    )
    return filled.select(base.columns).cast(base.schema)


@settings(max_examples=300, deadline=None)
@given(bars=bar_batches())
def test_payload_is_the_last_row_of_each_key_in_key_order(bars: pl.DataFrame) -> None:
    expected = bars.unique(subset=KEY, keep="last", maintain_order=True).sort(KEY)
    assert encode_csv(bars) == encode_csv(expected)
    assert encode_csv(bars).count(b"\n") == expected.height
