"""A large streaming write is split over several PostgreSQL connections and stays exact."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from market_data_pipeline import frames
from market_data_pipeline.sinks import read_bars
from market_data_pipeline.sinks.postgres import PARALLEL_MIN_ROWS, PostgresSink

pytestmark = pytest.mark.postgres


def _bars(rows: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    symbols = np.array([f"S{i:03d}" for i in range(97)])
    per_symbol = rows // len(symbols) + 1
    price = rng.random(rows) * 100 + 1
    return pl.DataFrame(
        {
            "symbol": np.repeat(symbols, per_symbol)[:rows],
            "resolution": ["1m"] * rows,
            "ts_ns": np.tile(np.arange(per_symbol) * 60_000_000_000, len(symbols))[:rows],
            "open": price,
            "high": price + 1,
            "low": price - 0.5,
            "close": price + 0.25,
            "volume": rng.random(rows) * 1_000,
            "vwap": price + 0.1,
            "trades": rng.integers(1, 50, rows),
            "end_ts_ns": [None] * rows,
            "incomplete": [False] * rows,
        },
        schema=frames.BAR_SCHEMA,
    )


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(["symbol", "resolution", "ts_ns"])


async def test_split_write_stores_every_bar_once_and_upserts_on_rewrite(postgres_url: str) -> None:
    first = _bars(PARALLEL_MIN_ROWS * 2, seed=1)
    changed = first.with_columns(pl.col("close") + 1.0)
    sink = PostgresSink(postgres_url, connections=3)
    await sink.open()
    await sink.write_frame(first)
    assert _sorted(read_bars(postgres_url)).equals(_sorted(first))
    await sink.write_frame(changed)  # every key exists: each part takes the upsert path
    await sink.close()
    assert _sorted(read_bars(postgres_url)).equals(_sorted(changed))


async def test_transactional_sink_uses_one_connection_and_rolls_back_whole(
    postgres_url: str,
) -> None:
    sink = PostgresSink(postgres_url, transactional=True, connections=3)
    await sink.open()
    await sink.write_frame(_bars(PARALLEL_MIN_ROWS * 2, seed=2))
    await sink.close(commit=False)
    assert read_bars(postgres_url).is_empty()
