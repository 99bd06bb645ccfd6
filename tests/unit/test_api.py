"""The notebook API: ``bars`` from a frame, ``run`` to a report, ``memory://`` read back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

import market_data_pipeline as mdp
from market_data_pipeline.errors import BadInputError, SinkSetupError, UsageError

T0 = datetime(2024, 1, 2, 9, 30, tzinfo=UTC)


def _trades(rows: int = 50, symbols: tuple[str, ...] = ("ES", "NQ")) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": [T0 + timedelta(seconds=7 * i) for i in range(rows)],
            "ticker": [symbols[i % len(symbols)] for i in range(rows)],
            "price": [100 + (i % 9) * 0.25 for i in range(rows)],
            "qty": [1 + i % 3 for i in range(rows)],
        }
    )


def test_bars_equal_what_mdp_run_stores_for_the_same_rows(tmp_path: Path) -> None:
    ticks = _trades()
    csv = tmp_path / "t.csv"
    ticks.write_csv(csv)
    report = mdp.run(input=str(csv), resolution="1m,5m", sink="memory://same-rows", grace="0s")
    assert report.reconciled and report.exit_code == 0
    stored = mdp.read_bars("memory://same-rows")
    assert mdp.bars(ticks, ["1m", "5m"]).equals(stored)


def test_pandas_in_polars_out_and_every_tick_in_a_bar() -> None:
    ticks = _trades(rows=30, symbols=("ES",))
    out = mdp.bars(ticks.to_pandas(), "1m")
    assert isinstance(out, pl.DataFrame)
    assert out["trades"].sum() == 30
    assert out["volume"].sum() == ticks["qty"].sum()
    assert out.columns[:3] == ["symbol", "resolution", "ts"]


def test_symbol_for_a_frame_without_one_and_naive_times_in_tz() -> None:
    naive = pl.DataFrame({"ts": [datetime(2024, 1, 2, 9, 30)], "price": [1.0], "size": [2]})
    out = mdp.bars(naive, "1h", symbol="X", tz="America/New_York")
    assert out["ts"][0] == datetime(2024, 1, 2, 14, 0, tzinfo=UTC)


def test_a_bad_row_is_named() -> None:
    ticks = _trades(rows=5).with_columns(pl.Series("price", [1.0, 2.0, float("nan"), 3.0, 4.0]))
    with pytest.raises(BadInputError, match="frame, row 2, field price"):
        mdp.bars(ticks, "1m")


def test_missing_symbol_says_how_to_name_it() -> None:
    with pytest.raises(BadInputError, match="symbol="):
        mdp.bars(_trades().drop("ticker"), "1m")


def test_run_inside_a_running_event_loop() -> None:
    async def notebook_cell() -> mdp.RunReport:
        return mdp.run({"ticks": 500, "resolution": "1m", "sink": "memory://in-loop"})

    report = asyncio.run(notebook_cell())
    assert report.reconciled
    assert mdp.read_bars("memory://in-loop")["trades"].sum() == 500


def test_memory_sink_upserts_and_a_rerun_leaves_one_row_per_bar() -> None:
    for _ in range(2):
        mdp.run(ticks=300, resolution="1m", sink="memory://rerun", start="2024-01-02T09:30:00Z")
    stored = mdp.read_bars("memory://rerun")
    assert stored.select("symbol", "resolution", "ts").is_duplicated().sum() == 0
    assert stored["trades"].sum() == 300


def test_rows_out_of_time_order_all_land_in_bars() -> None:
    ticks = _trades(rows=40, symbols=("ES",)).reverse()
    out = mdp.bars(ticks, "1m")
    assert out["trades"].sum() == 40
    assert out.equals(mdp.bars(ticks.reverse(), "1m"))


def _daily_ohlcv(index: pd.DatetimeIndex) -> pd.DataFrame:
    # The shape yfinance and backtesting.py give: capitalised columns, time in the index.
    n = len(index)
    return pd.DataFrame(
        {"Open": [1.0] * n, "High": [2.0] * n, "Low": [0.5] * n, "Close": [1.5] * n,
         "Volume": [10.0] * n},
        index=index,
    )  # fmt: skip


def test_a_pandas_datetime_index_is_the_time_column() -> None:
    index = pd.date_range("2024-01-02 09:30", periods=120, freq="1min", tz="UTC", name="Date")
    out = mdp.bars(_daily_ohlcv(index), "60m", symbol="SPY")
    assert out["resolution"].unique().to_list() == ["1h"]  # 60m is stored as 1h
    assert out["ts"].to_list() == [datetime(2024, 1, 2, h, tzinfo=UTC) for h in (9, 10, 11)]
    assert out["volume"].sum() == 1_200.0
    unnamed = _daily_ohlcv(pd.date_range("2024-01-02", periods=3, freq="1D"))
    assert mdp.bars(unnamed, "1d", symbol="SPY").height == 3


def test_a_datetime_index_beside_a_time_column_names_both() -> None:
    index = pd.date_range("2024-01-02", periods=3, freq="1D", name="Date")
    frame = _daily_ohlcv(index).assign(timestamp=index)
    with pytest.raises(BadInputError, match="two time columns: the DatetimeIndex Date and column"):
        mdp.bars(frame, "1d", symbol="SPY")


@pytest.mark.parametrize("resolution", ["1000000000d", "99999999999999h"])
def test_a_resolution_past_a_century_is_a_usage_error(resolution: str) -> None:
    with pytest.raises(UsageError, match="longer than 100 years"):
        mdp.bars(_trades(rows=3), resolution)


def test_reading_a_store_that_is_not_there_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SinkSetupError, match="no database file"):
        mdp.read_bars(f"sqlite:///{tmp_path / 'nonexistent.db'}")
    assert not (tmp_path / "nonexistent.db").exists()
    with pytest.raises(SinkSetupError, match="no store memory://never-written"):
        mdp.read_bars("memory://never-written")


def test_a_run_into_another_table_reads_back_from_it() -> None:
    mdp.run(ticks=200, resolution="1m", sink="memory://tables", table="es")
    assert mdp.read_bars("memory://tables", table="es")["trades"].sum() == 200
    with pytest.raises(SinkSetupError):
        mdp.read_bars("memory://tables")
