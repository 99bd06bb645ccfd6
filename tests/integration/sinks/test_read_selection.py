"""``read_selection`` (``/v1/bars``) against a filter of the whole table, in both stores."""

from __future__ import annotations

import asyncio

import hypothesis.strategies as st
import polars as pl
from hypothesis import HealthCheck, given, settings

from market_data_pipeline import frames
from market_data_pipeline.sinks import Selection, open_sink, read_bars, read_selection

T0 = 1_704_187_800_000_000_000  # 2024-01-02T09:30:00Z
MINUTE = 60_000_000_000
SYMBOLS = ("AAPL", "MSFT")


def _bars(symbol: str, resolution: str, minutes: range) -> pl.DataFrame:
    n = len(minutes)
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "resolution": [resolution] * n,
            "ts_ns": [T0 + m * MINUTE for m in minutes],
            **{name: [1.0 + m for m in minutes] for name in ("open", "high", "low", "close")},
            "volume": [float(m) for m in minutes],
            "vwap": [None] * n,
            "trades": [m for m in minutes],
            "end_ts_ns": [None] * n,
            "incomplete": [False] * n,
        },
        schema=frames.BAR_SCHEMA,
    )


async def _write(url: str) -> None:
    sink = open_sink(url)
    await sink.open()
    await sink.write_frame(_bars("AAPL", "1m", range(40)))
    await sink.write_frame(_bars("MSFT", "1m", range(3, 43)))
    await sink.write_frame(_bars("AAPL", "5m", range(0, 100, 5)))
    await sink.close()


def _reference(frame: pl.DataFrame, selection: Selection) -> pl.DataFrame:
    chosen = frame.filter(
        (pl.col("symbol") == selection.symbol) & (pl.col("resolution") == selection.resolution)
    )
    if selection.start_ns is not None:
        chosen = chosen.filter(pl.col("ts_ns") >= selection.start_ns)
    if selection.end_ns is not None:
        chosen = chosen.filter(pl.col("ts_ns") < selection.end_ns)
    chosen = chosen.sort("ts_ns")
    return chosen if selection.limit is None else chosen.tail(selection.limit)


offsets = st.none() | st.integers(-5, 50).map(lambda m: T0 + m * MINUTE + m % 2)
selections = st.builds(
    Selection,
    symbol=st.sampled_from((*SYMBOLS, "NONE")),
    resolution=st.sampled_from(("1m", "5m")),
    start_ns=offsets,
    end_ns=offsets,
    limit=st.none() | st.integers(0, 60),
)


def test_the_store_selects_what_a_filter_of_the_whole_table_would(sink_url: str) -> None:
    asyncio.run(_write(sink_url))
    whole = read_bars(sink_url)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(selections)
    def check(selection: Selection) -> None:
        assert read_selection(sink_url, selection).equals(_reference(whole, selection))

    check()
