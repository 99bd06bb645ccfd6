"""Calendar windows against pandas + zoneinfo, and session windows against exchange-calendars."""

from __future__ import annotations

from datetime import UTC, datetime

import exchange_calendars as xc
import pandas as pd
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market_data_pipeline.aggregation.calendars import TimeFrame, make_windows, parse_week_start
from market_data_pipeline.aggregation.resolution import parse_resolution
from market_data_pipeline.errors import UsageError

# pandas refuses a bin edge at a local midnight that does not exist, so Santiago (DST at
# midnight) is checked on its own below.
ZONES = ["UTC", "America/New_York", "Europe/London", "Australia/Sydney", "Asia/Tokyo"]
# 2023-12-20 .. 2025-01-10 UTC: both DST changes of every zone above, and a year boundary.
LOW_NS = int(datetime(2023, 12, 20, tzinfo=UTC).timestamp()) * 10**9
HIGH_NS = int(datetime(2025, 1, 10, tzinfo=UTC).timestamp()) * 10**9
# pandas rules with bins closed and labelled on the left.
PANDAS_RULES = {"1d": "D", "2d": "2D", "1mo": "MS", "1q": "QS", "1y": "YS", "3mo": "3MS"}
WEEK_RULES = ["W-MON", "W-TUE", "W-WED", "W-THU", "W-FRI", "W-SAT", "W-SUN"]


def utc_ns(text: str) -> int:
    return int(pd.Timestamp(text).tz_convert("UTC").value)


def pandas_starts(ts_ns: list[int], tz: str, rule: str) -> dict[int, int]:
    """Return {tick index: window start in UTC ns} by pandas ``resample`` (left closed/label)."""
    index = pd.DatetimeIndex(pd.to_datetime(ts_ns, unit="ns", utc=True)).tz_convert(tz)
    ticks = pd.Series(range(len(ts_ns)), index=index).sort_index()
    out: dict[int, int] = {}
    for label, group in ticks.resample(rule, closed="left", label="left"):
        for position in group.to_list():
            out[position] = int(pd.Timestamp(label).tz_convert("UTC").value)
    return out


def our_bounds(ts_ns: list[int], label: str, frame: TimeFrame) -> tuple[list[int], list[int]]:
    res = parse_resolution(label)
    windows = make_windows([res], frame)[res.label]  # 3mo is stored as 1q
    bounds = windows.bounds(pl.Series(ts_ns, dtype=pl.Int64))
    return bounds.start.to_list(), bounds.end.to_list()


tick_times = st.lists(st.integers(LOW_NS, HIGH_NS), min_size=1, max_size=40)


@settings(max_examples=150, deadline=None)
@given(ts=tick_times, tz=st.sampled_from(ZONES), label=st.sampled_from(sorted(PANDAS_RULES)))
def test_days_months_quarters_years_match_pandas(ts: list[int], tz: str, label: str) -> None:
    # pandas counts 2D and 3MS bins from the first tick; we from 1970-01-01 and from January
    # (quarters), so those two are checked for contiguity only.
    starts, ends = our_bounds(ts, label, TimeFrame(tz=tz))
    if label not in ("2d", "3mo"):
        want = pandas_starts(ts, tz, PANDAS_RULES[label])
        assert starts == [want[i] for i in range(len(ts))]
    assert_contiguous(ts, starts, ends, label, TimeFrame(tz=tz))


@settings(max_examples=150, deadline=None)
@given(ts=tick_times, tz=st.sampled_from(ZONES), week_start=st.integers(0, 6))
def test_weeks_match_pandas(ts: list[int], tz: str, week_start: int) -> None:
    frame = TimeFrame(tz=tz, week_start=week_start)
    starts, ends = our_bounds(ts, "1w", frame)
    want = pandas_starts(ts, tz, WEEK_RULES[week_start])
    assert starts == [want[i] for i in range(len(ts))]
    assert_contiguous(ts, starts, ends, "1w", frame)


def assert_contiguous(
    ts: list[int], starts: list[int], ends: list[int], label: str, frame: TimeFrame
) -> None:
    """Each tick is in [start, end); the window at ``end`` starts there and ``end - 1`` is ours."""
    for t, start, end in zip(ts, starts, ends, strict=True):
        assert start <= t < end
    after, _ = our_bounds(ends, label, frame)
    before, _ = our_bounds([e - 1 for e in ends], label, frame)
    assert after == ends
    assert before == starts


def test_day_on_dst_change_spans_23_and_25_hours() -> None:
    ts = [utc_ns("2024-03-10T12:00:00-04:00"), utc_ns("2024-11-03T12:00:00-05:00")]
    starts, ends = our_bounds(ts, "1d", TimeFrame(tz="America/New_York"))
    hours = [(end - start) // 3_600_000_000_000 for start, end in zip(starts, ends, strict=True)]
    assert hours == [23, 25]
    assert starts[0] == utc_ns("2024-03-10T00:00:00-05:00")


def test_a_missing_local_midnight_starts_the_day_at_its_first_instant() -> None:
    # Santiago jumps from 00:00 -04 to 01:00 -03 on 2024-09-08 (a Sunday).
    ts = [utc_ns("2024-09-08T12:00:00-03:00")]
    starts, ends = our_bounds(ts, "1d", TimeFrame(tz="America/Santiago"))
    assert starts == [utc_ns("2024-09-08T01:00:00-03:00")]
    assert ends == [utc_ns("2024-09-09T00:00:00-03:00")]
    weeks, _ = our_bounds(ts, "1w", TimeFrame(tz="America/Santiago", week_start=6))
    assert weeks == starts


def test_utc_days_stay_epoch_aligned() -> None:
    ts = list(range(-5 * 86_400 * 10**9, 5 * 86_400 * 10**9, 3_600 * 10**9 * 7))
    for label in ("1d", "2d", "3d"):
        width = parse_resolution(label).ns
        starts, _ = our_bounds(ts, label, TimeFrame())
        assert starts == [t - t % width for t in ts]


def test_week_start_names() -> None:
    assert parse_week_start("Monday") == 0
    assert parse_week_start("sun") == 6
    with pytest.raises(UsageError, match="week-start"):
        parse_week_start("someday")


def test_unknown_zone_and_calendar_are_refused() -> None:
    with pytest.raises(UsageError, match="unknown time zone 'Mars/Olympus'"):
        make_windows([parse_resolution("1d")], TimeFrame(tz="Mars/Olympus"))
    with pytest.raises(UsageError, match="unknown calendar 'XXXX'"):
        make_windows([parse_resolution("1d")], TimeFrame(calendar="XXXX"))
    with pytest.raises(UsageError, match="needs --calendar"):
        make_windows([parse_resolution("1h")], TimeFrame(align="session"))


# -- sessions against exchange-calendars ---------------------------------------------------------
# A holiday (Thanksgiving 2024-11-28), an early close (2024-11-29) and both 2024 DST changes.
XNYS_RANGES = [
    ("2024-03-07", "2024-03-13"),
    ("2024-10-31", "2024-11-05"),
    ("2024-11-26", "2024-12-03"),
]


def xnys_sessions() -> list[tuple[int, int]]:
    cal = xc.get_calendar("XNYS", start="2024-01-01", end="2024-12-31")
    out = []
    for first, last in XNYS_RANGES:
        for session in cal.sessions_in_range(first, last):
            out.append(
                (int(cal.session_open(session).value), int(cal.session_close(session).value))
            )
    return out


def test_xnys_session_bars_are_exchange_calendars_sessions() -> None:
    sessions = xnys_sessions()
    assert (utc_ns("2024-11-29T09:30:00-05:00"), utc_ns("2024-11-29T13:00:00-05:00")) in sessions
    assert not any(o <= utc_ns("2024-11-28T12:00:00-05:00") < c for o, c in sessions)
    windows = make_windows([parse_resolution("1d")], TimeFrame(calendar="XNYS"))["1d"]
    assert windows.label == "1d@XNYS"
    ts = [t for o, c in sessions for t in (o, (o + c) // 2, c - 1)]
    bounds = windows.bounds(pl.Series(ts, dtype=pl.Int64))
    want = [s for s in sessions for _ in range(3)]
    assert list(zip(bounds.start.to_list(), bounds.end.to_list(), strict=True)) == want
    inside = windows.inside(pl.Series(ts, dtype=pl.Int64))
    assert inside is not None and inside.all()


def test_xnys_outside_session_times() -> None:
    windows = make_windows([parse_resolution("1d")], TimeFrame(calendar="XNYS"))["1d"]
    outside = [
        utc_ns("2024-11-28T12:00:00-05:00"),  # Thanksgiving
        utc_ns("2024-11-29T13:00:00-05:00"),  # the early close itself
        utc_ns("2024-11-29T15:00:00-05:00"),  # after the early close
        utc_ns("2024-03-11T09:29:59-04:00"),  # before the open
        utc_ns("2024-03-09T12:00:00-05:00"),  # Saturday
    ]
    series = pl.Series(outside, dtype=pl.Int64)
    inside = windows.inside(series)
    assert inside is not None and not inside.any()
    assert windows.bounds(series).start.null_count() == len(outside)


def test_session_aligned_hours_start_at_the_open_and_cut_at_the_close() -> None:
    windows = make_windows([parse_resolution("1h")], TimeFrame(calendar="XNYS", align="session"))
    hour = windows["1h"]
    assert hour.label == "1h@XNYS"
    normal = [utc_ns(f"2024-11-27T{h}:{m}:00-05:00") for h, m in [("09", "30"), ("15", "45")]]
    early = [utc_ns("2024-11-29T12:45:00-05:00")]
    bounds = hour.bounds(pl.Series(normal + early, dtype=pl.Int64))
    assert bounds.start.to_list() == [
        utc_ns("2024-11-27T09:30:00-05:00"),
        utc_ns("2024-11-27T15:30:00-05:00"),
        utc_ns("2024-11-29T12:30:00-05:00"),
    ]
    assert bounds.end.to_list() == [
        utc_ns("2024-11-27T10:30:00-05:00"),
        utc_ns("2024-11-27T16:00:00-05:00"),
        utc_ns("2024-11-29T13:00:00-05:00"),
    ]


def test_cmes_futures_day_starts_17_00_chicago_the_evening_before() -> None:
    cal = xc.get_calendar("CMES", start="2024-01-01", end="2024-12-31")
    windows = make_windows([parse_resolution("1d")], TimeFrame(calendar="CMES"))["1d"]
    # Sunday evening after the spring DST change belongs to Monday 2024-03-11's session.
    ts = pl.Series([utc_ns("2024-03-10T17:30:00-05:00")], dtype=pl.Int64)
    bounds = windows.bounds(ts)
    session = pd.Timestamp("2024-03-11")
    assert bounds.start.to_list() == [int(cal.session_open(session).value)]
    assert bounds.end.to_list() == [int(cal.session_close(session).value)]
    start = pd.Timestamp(bounds.start[0], unit="ns", tz="UTC").tz_convert("America/Chicago")
    assert (start.day, start.hour, start.minute) == (10, 17, 0)


def test_calendar_weeks_use_the_calendar_zone() -> None:
    windows = make_windows([parse_resolution("1w")], TimeFrame(calendar="XNYS"))["1w"]
    assert windows.label == "1w@XNYS"
    ts = pl.Series([utc_ns("2024-11-27T10:00:00-05:00")], dtype=pl.Int64)
    assert windows.bounds(ts).start.to_list() == [utc_ns("2024-11-25T00:00:00-05:00")]
