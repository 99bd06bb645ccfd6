"""Bars cannot be split: resampling to a resolution finer than the input is refused."""

from __future__ import annotations

import polars as pl
import pytest

from market_data_pipeline.aggregation.builder import BarEngine
from market_data_pipeline.aggregation.resample import refuse_upsampling
from market_data_pipeline.aggregation.resolution import parse_resolutions
from market_data_pipeline.errors import UsageError
from market_data_pipeline.frames import BAR_INPUT_SCHEMA

MINUTE = 60_000_000_000


def _bars(starts: list[int]) -> pl.DataFrame:
    n = len(starts)
    return pl.DataFrame(
        {
            "symbol": ["SPY"] * n,
            "ts_ns": starts,
            "open": [10.0] * n,
            "high": [11.0] * n,
            "low": [9.0] * n,
            "close": [10.5] * n,
            "volume": [100.0] * n,
            "vwap": [10.2] * n,
            "trades": [5] * n,
        },
        schema=BAR_INPUT_SCHEMA,
    )


def test_finer_resolution_than_the_input_is_refused() -> None:
    with pytest.raises(UsageError, match="30s bars from input bars 1m apart"):
        refuse_upsampling(_bars([0, MINUTE, 2 * MINUTE]), parse_resolutions("5m,30s"))


def test_sparse_input_is_judged_by_its_smallest_gap() -> None:
    bars = _bars([0, 2 * MINUTE, 3 * MINUTE, 7 * MINUTE])  # quiet minutes missing
    resolutions = parse_resolutions("1m,5m")
    refuse_upsampling(bars, resolutions)
    engine = BarEngine(resolutions, grace_ns=0)
    out = pl.concat([engine.add_bars(bars), engine.flush()])
    assert out.filter(pl.col("resolution") == "5m")["volume"].sum() == 400.0


HOUR = 60 * MINUTE


def test_resolution_must_be_a_whole_multiple_of_the_input_spacing() -> None:
    hourly = _bars([0, HOUR, 2 * HOUR, 5 * HOUR])
    with pytest.raises(UsageError) as info:
        refuse_upsampling(hourly, parse_resolutions("2h,90m"))
    assert str(info.value) == (
        "cannot build 90m bars from input bars 1h apart: 90m is not a whole multiple of 1h"
    )
    refuse_upsampling(hourly, parse_resolutions("2h,3h,1d,1w,1mo"))


def test_calendar_resolutions_need_input_that_tiles_a_day() -> None:
    seven_minutes = _bars([0, 7 * MINUTE, 14 * MINUTE])
    with pytest.raises(UsageError, match="1d is not a whole multiple of 7m"):
        refuse_upsampling(seven_minutes, parse_resolutions("1d"))
    two_days = _bars([0, 2 * 24 * HOUR])
    with pytest.raises(UsageError, match="3d is not a whole multiple of 2d"):
        refuse_upsampling(two_days, parse_resolutions("3d"))
    refuse_upsampling(two_days, parse_resolutions("4d,1mo"))
