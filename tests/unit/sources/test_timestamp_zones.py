"""Naive timestamps read in a zone (--tz) and strftime formats (--ts-format), against zoneinfo."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from market_data_pipeline.sources.timestamps import to_ns

ZONES = ["America/New_York", "Europe/London", "America/Chicago", "Australia/Sydney"]


def reference_ns(wall: datetime, tz: str) -> int | None:
    """zoneinfo's instant of a naive wall time; None when a DST jump skips it."""
    local = wall.replace(tzinfo=ZoneInfo(tz), fold=0)
    instant = local.astimezone(UTC)
    if instant.astimezone(ZoneInfo(tz)).replace(tzinfo=None) != wall:
        return None
    return (instant - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000


walls = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2024, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(walls, min_size=1, max_size=20), tz=st.sampled_from(ZONES))
def test_naive_strings_are_read_in_the_zone(values: list[datetime], tz: str) -> None:
    # Around the DST changes, where both a skipped and a repeated hour live.
    texts = [v.isoformat(sep=" ") for v in values]
    got = to_ns(pa.array(texts), tz=tz).to_list()
    assert got == [reference_ns(v, tz) for v in values]


def test_dst_edges_in_new_york() -> None:
    texts = ["2024-03-10 02:30:00", "2024-11-03 01:30:00", "2024-11-03T01:30:00-05:00"]
    got = to_ns(pa.array(texts), tz="America/New_York").to_list()
    first_130 = int(datetime(2024, 11, 3, 5, 30, tzinfo=UTC).timestamp()) * 10**9
    assert got == [None, first_130, first_130 + 3_600 * 10**9]


def test_offsets_and_epochs_ignore_the_zone() -> None:
    texts = ["2024-01-02T09:30:00Z", "1704187800"]
    got = to_ns(pa.array(texts), tz="Asia/Tokyo").to_list()
    assert got == [1_704_187_800 * 10**9] * 2


def test_strftime_format_in_a_zone() -> None:
    got = to_ns(pa.array(["1/4/1999", "13/1/1999", None]), fmt="%m/%d/%Y", tz="America/New_York")
    assert got.to_list() == [
        int(datetime(1999, 1, 4, 5, tzinfo=UTC).timestamp()) * 10**9,
        None,
        None,
    ]


def test_naive_arrow_timestamps_and_dates_are_read_in_the_zone() -> None:
    stamps = pa.array([datetime(2024, 7, 1, 9, 30)], pa.timestamp("us"))
    dates = pa.array([datetime(2024, 7, 1).date()], pa.date32())
    expect = int(datetime(2024, 7, 1, 13, 30, tzinfo=UTC).timestamp()) * 10**9
    assert to_ns(stamps, tz="America/New_York").to_list() == [expect]
    assert to_ns(dates, tz="America/New_York").to_list() == [
        expect - 9 * 3_600 * 10**9 - 1_800 * 10**9
    ]
