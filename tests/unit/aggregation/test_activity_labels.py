"""Activity and price-type resolution labels: one stored spelling, no clash with time widths."""

from __future__ import annotations

import logging

import polars as pl
import pytest

from market_data_pipeline.aggregation.activity_labels import stored_label
from market_data_pipeline.aggregation.calendars import TimeFrame
from market_data_pipeline.aggregation.engines import BarEngines, windows_for
from market_data_pipeline.aggregation.resolution import parse_resolution, parse_resolutions
from market_data_pipeline.errors import UsageError


@pytest.mark.parametrize(
    ("typed", "label", "unit", "threshold"),
    [
        ("1000tick", "1000tick", "tick", 1000),
        ("1000-TICK", "1000tick", "tick", 1000),
        ("500ticks", "500tick", "tick", 500),
        ("100000volume", "100000volume", "volume", 100_000),
        ("10000-VOLUME", "10000volume", "volume", 10_000),
        ("2.5volume", "2.5volume", "volume", 2.5),
        ("1e6value", "1000000value", "value", 1e6),
        ("1_000_000value", "1000000value", "value", 1e6),
        ("1000tick:BID", "1000tick:bid", "tick", 1000),
    ],
)
def test_activity_labels_have_one_stored_spelling(
    typed: str, label: str, unit: str, threshold: float
) -> None:
    res = parse_resolution(typed)
    assert (res.label, res.unit, res.threshold, res.is_activity) == (label, unit, threshold, True)
    assert stored_label(typed) == label


@pytest.mark.parametrize(
    ("typed", "label", "price"),
    [("1m", "1m", ""), ("1m:bid", "1m:bid", "bid"), ("1m:ask", "1m:ask", "ask"),
     ("1m:mid", "1m", "mid"), ("1m:last", "1m", "last"), ("1mo", "1mo", ""), ("1min", "1m", "")],
)  # fmt: skip
def test_time_labels_keep_their_meaning_and_mid_and_last_are_the_plain_label(
    typed: str, label: str, price: str
) -> None:
    res = parse_resolution(typed)
    assert (res.label, res.price, res.is_activity) == (label, price, False)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("1000t", "unknown unit"),  # pandas' T is a minute: not an activity unit
        ("0tick", "above zero"),
        ("2.5tick", "whole number"),
        ("1m:best", "unknown price type"),
    ],
)
def test_bad_labels_are_refused_naming_why(typed: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_resolution(typed)


def test_resampling_bars_into_activity_bars_is_refused_with_the_reason() -> None:
    engine = BarEngines(parse_resolutions("1h,1000tick"), 0)
    with pytest.raises(UsageError, match="cannot be regrouped by count, volume or value"):
        engine.add_bars(pl.DataFrame())


def test_a_calendar_applies_to_time_bars_only_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        stored, windows = windows_for(
            parse_resolutions("1d,1d:bid,1000tick"), TimeFrame(calendar="XNYS")
        )
    assert [res.label for res in stored] == ["1d@XNYS", "1d@XNYS:bid", "1000tick"]
    assert sorted(windows) == ["1d@XNYS", "1d@XNYS:bid"]
    assert "applies to time bars only" in caplog.text and "1000tick" in caplog.text


def test_many_ticks_in_one_microsecond_give_bars_with_their_own_keys() -> None:
    ticks = pl.DataFrame(
        {
            "symbol": ["A"] * 5,
            "ts_ns": [10_000] * 4 + [10_500],
            "price": [1.0] * 5,
            "size": [1.0] * 5,
        }
    )
    engine = BarEngines(parse_resolutions("1tick"), 0)
    bars = pl.concat([engine.add_ticks(ticks), engine.flush()])
    assert bars["ts_ns"].to_list() == [10_000, 11_000, 12_000, 13_000, 14_000]
    assert bars["end_ts_ns"].to_list() == [10_000] * 4 + [10_500]
