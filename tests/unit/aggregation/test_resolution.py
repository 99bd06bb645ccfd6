"""Resolution strings: units, calendar units, refused capitals and durations."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from market_data_pipeline.aggregation.resolution import (
    MAX_NS,
    canonical_label,
    duration_ns,
    format_duration_ns,
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


@pytest.mark.parametrize(
    ("spellings", "label"),
    [
        (["1m", "1min", "60s", "60000ms", "1 min"], "1m"),
        (["1h", "60m", "60min", "3600s", "1H"], "1h"),
        (["90s", "1500ms"], None),
        (["24h", "1440m"], "24h"),
        (["1q", "3mo"], "1q"),
        (["1y", "12mo", "4q"], "1y"),
        (["2q", "6mo"], "2q"),
        (["1d"], "1d"),
        (["7d"], "7d"),
        (["1w"], "1w"),
    ],
)
def test_every_spelling_of_a_width_has_one_label(spellings: list[str], label: str | None) -> None:
    for text in spellings:
        assert parse_resolution(text).label == (label or text)


def test_days_and_weeks_are_not_rewritten_into_hours_or_each_other() -> None:
    # 24h windows start at UTC midnight, 1d ones at local midnight; 7d ones are not weeks.
    assert parse_resolution("24h").unit == "h"
    assert parse_resolution("7d").unit == "d"
    assert parse_resolution("14d").label == "14d"


def test_a_list_with_two_spellings_of_one_width_builds_it_once() -> None:
    assert [res.label for res in parse_resolutions("1m,60s,1min,1h,60m")] == ["1m", "1h"]


def test_a_calendar_label_is_canonical_with_its_code_in_capitals() -> None:
    assert canonical_label("1d@xnys") == "1d@XNYS"
    assert canonical_label("60m@XNYS") == "1h@XNYS"
    with pytest.raises(UsageError, match="calendar code after @"):
        canonical_label("1d@")


@pytest.mark.parametrize("text", ["99999999999999h", "1000000000d", "101y", "1300mo"])
def test_widths_past_a_century_are_refused_not_overflowed(text: str) -> None:
    with pytest.raises(UsageError, match="longer than 100 years"):
        parse_resolution(text)


@pytest.mark.parametrize("text", ["99999999999999h", "1000000000d", "36700d"])
def test_durations_past_a_century_are_refused_not_overflowed(text: str) -> None:
    with pytest.raises(UsageError, match="longer than 100 years"):
        parse_duration_ns(text, what="grace")


_FIXED = {"ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3_600 * 10**9}
_MONTHS = {"mo": 1, "q": 3, "y": 12}


@given(count=st.integers(1, 10**6), unit=st.sampled_from([*_FIXED, *_MONTHS]))
def test_the_label_keeps_the_width_in_the_largest_whole_unit(count: int, unit: str) -> None:
    sizes = _FIXED if unit in _FIXED else _MONTHS
    total = count * sizes[unit]
    assume(total * (1 if unit in _FIXED else 31 * 86_400 * 10**9) <= MAX_NS)
    res = parse_resolution(f"{count}{unit}")
    assert res.count * sizes[res.unit] == total  # the same width
    assert all(total % size for size in sizes.values() if size > sizes[res.unit])  # the largest
    assert parse_resolution(res.label) == res  # a label is its own canonical form


def test_a_price_type_follows_the_canonical_width() -> None:
    assert parse_resolution("60s:BID").label == "1m:bid"
    assert canonical_label("60m:ask@xnys") == "1h:ask@XNYS"
    assert canonical_label("1000-TICK") == "1000tick"
    assert canonical_label("60s:mid") == "1m"


@pytest.mark.parametrize(
    ("value", "ns"),
    [
        ("250ms", 250 * 10**6),
        ("2s", 2 * 10**9),
        ("0.25", 250 * 10**6),
        (5, 5 * 10**9),
        (0.5, 5 * 10**8),
    ],
)
def test_a_duration_is_text_with_a_unit_or_a_number_of_seconds(value: str | float, ns: int) -> None:
    assert duration_ns(value) == ns


@pytest.mark.parametrize("value", ["nan", "inf", True, "2x", "1mo"])
def test_a_duration_that_is_no_length_of_time_is_refused(value: str | bool) -> None:
    with pytest.raises(UsageError, match="bad grace"):
        duration_ns(value, what="grace")


@given(st.integers(min_value=0, max_value=MAX_NS))
def test_a_written_duration_reads_back_the_same(ns: int) -> None:
    written, back = format_duration_ns(ns), duration_ns(format_duration_ns(ns))
    if ns % 10**6 == 0:  # whole milliseconds: written with a unit, read back exactly
        assert back == ns and written[-1].isalpha()
    else:  # finer: written as seconds, a float, exact to its 53 bits
        assert abs(back - ns) <= ns * 2**-52 * 2
