"""Resolution strings: units, calendar units, refused capitals and durations."""

from __future__ import annotations

import pytest

from market_data_pipeline.bars.resolution import (
    parse_duration_ns,
    parse_resolution,
    parse_resolutions,
)
from market_data_pipeline.errors import UsageError

MINUTE = 60 * 10**9


@pytest.mark.parametrize(
    ("text", "label", "unit", "months"),
    [
        ("1m", "1m", "m", 0),
        ("5min", "5m", "m", 0),
        ("1H", "1h", "h", 0),
        ("1d", "1d", "d", 0),
        ("1w", "1w", "w", 0),
        ("1mo", "1mo", "mo", 1),
        ("2q", "2q", "q", 6),
        ("1y", "1y", "y", 12),
    ],
)
def test_units(text: str, label: str, unit: str, months: int) -> None:
    res = parse_resolution(text)
    assert (res.label, res.unit, res.months) == (label, unit, months)
    assert res.is_calendar == (unit in ("d", "w", "mo", "q", "y"))


def test_minutes_stay_minutes() -> None:
    assert parse_resolution("1m").ns == MINUTE
    assert parse_duration_ns("90m") == 90 * MINUTE


@pytest.mark.parametrize(
    ("text", "hint"),
    [("1M", "1mo for a month or 1min for a minute"), ("1Y", "1y for a year"), ("1Mo", "1mo")],
)
def test_capital_month_and_year_are_refused_with_a_hint(text: str, hint: str) -> None:
    with pytest.raises(UsageError, match="ambiguous") as info:
        parse_resolution(text)
    assert hint in str(info.value)


def test_unknown_units_and_zero_are_refused() -> None:
    with pytest.raises(UsageError, match="unknown unit 'fortnight'"):
        parse_resolution("1fortnight")
    with pytest.raises(UsageError, match="longer than zero"):
        parse_resolution("0m")
    with pytest.raises(UsageError, match="no resolution"):
        parse_resolutions(" , ")


def test_months_have_no_fixed_duration() -> None:
    with pytest.raises(UsageError, match="no fixed length"):
        parse_duration_ns("1mo", what="grace")
    assert parse_duration_ns("0") == 0
