"""ReplaySource timestamps: ISO-8601 forms, naive = UTC, epoch units by magnitude or argument."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from source_helpers import collect, write_text

from market_data_pipeline.sources.replay.source import ReplaySource
from market_data_pipeline.sources.timestamps import UNIT_NS, TsUnit, to_ns

T0 = 1_704_164_645_000_000_000  # 2024-01-02T03:04:05Z
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05Z", T0),
        ("2024-01-02T03:04:05", T0),  # naive = UTC
        ("2024-01-02 03:04:05", T0),
        ("2024-01-02T03:04:05.123456789Z", T0 + 123_456_789),
        ("2024-01-02 03:04:05.5", T0 + 500_000_000),
        ("2024-01-02T04:04:05+01:00", T0),
        ("2024-01-02T04:04:05+0100", T0),
        ("2024-01-01T22:04:05-05:00", T0),
        ("2024-01-02", T0 - (3 * 3600 + 4 * 60 + 5) * 10**9),
        ("2024-01-02T03:04", T0 - 5 * 10**9),
        ("1704164645", T0),
        ("1704164645.25", T0 + 250_000_000),
        ("1704164645000", T0),
        ("1704164645000000", T0),
        ("1704164645000000000", T0),
    ],
)
async def test_timestamp_forms(tmp_path: Path, text: str, expected: int) -> None:
    path = write_text(tmp_path / "t.csv", f"symbol,ts,price\nA,{text},1")
    out = await collect(ReplaySource([path]))
    assert out["ts_ns"].to_list() == [expected]


async def test_mixed_forms_in_one_file(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "t.csv",
        "symbol,ts,price\nA,2024-01-02T03:04:05Z,1\nA,2024-01-02 03:04:05,1\nA,1704164645000,1",
    )
    out = await collect(ReplaySource([path]))
    assert out["ts_ns"].to_list() == [T0, T0, T0]


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
async def test_ts_unit_argument_overrides_magnitude(tmp_path: Path, unit: TsUnit) -> None:
    path = write_text(tmp_path / "t.csv", "symbol,ts,price\nA,1000,1")
    out = await collect(ReplaySource([path], ts_unit=unit))
    assert out["ts_ns"].to_list() == [1000 * UNIT_NS[unit]]


_EPOCH_NS = st.integers(
    # auto detection is unambiguous from 1973-03-03T09:46:40Z to the end of int64 nanoseconds
    min_value=100_000_000 * 10**9,
    max_value=9_100_000_000 * 10**9,
)


@given(ns=_EPOCH_NS, unit=st.sampled_from(["s", "ms", "us", "ns"]), as_text=st.booleans())
def test_epoch_unit_detection_round_trip(ns: int, unit: str, as_text: bool) -> None:
    value = ns // UNIT_NS[unit]
    array = pa.array([str(value)]) if as_text else pa.array([value], pa.int64())
    assert to_ns(array).to_list() == [value * UNIT_NS[unit]]


@given(
    moment=st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2261, 12, 31)),
    offset_min=st.integers(-14 * 60, 14 * 60),
    sep=st.sampled_from(["T", " "]),
)
def test_iso_round_trip_with_offsets(moment: datetime, offset_min: int, sep: str) -> None:
    sign = "+" if offset_min >= 0 else "-"
    hours, minutes = divmod(abs(offset_min), 60)
    text = moment.isoformat(sep=sep) + f"{sign}{hours:02d}:{minutes:02d}"
    wall_us = (moment.replace(tzinfo=UTC) - EPOCH) // timedelta(microseconds=1)
    utc_ns = wall_us * 1000 - offset_min * 60 * 10**9
    for values in (pa.array([text]), pa.array([text, "garbage"])):  # fast and careful paths
        assert to_ns(values).to_list()[0] == utc_ns


def test_naive_iso_is_utc() -> None:
    assert to_ns(pa.array(["1970-01-01T00:00:01"])).to_list() == [10**9]
    assert to_ns(pa.array(["1970-01-01T00:00:01", "x"])).to_list() == [10**9, None]


def test_unusable_values_become_null() -> None:
    values = pa.array(["nope", None, "2024-13-01", "9" * 30, "nan"])
    assert to_ns(values).to_list() == [None] * 5


def test_out_of_range_epoch_is_null() -> None:
    assert to_ns(pa.array([9_300_000_000], pa.int64()), "s").to_list() == [None]


_NEAR_BOUNDS = st.sampled_from([0, 10**11, 10**14, 10**17]).flatmap(
    lambda bound: st.integers(-3, 3).map(lambda step: bound + step)
)
_EPOCH_INTS = st.one_of(
    _NEAR_BOUNDS, _NEAR_BOUNDS.map(lambda v: -v), st.integers(-(2**63), 2**63 - 1), st.none()
)


@given(values=st.lists(_EPOCH_INTS, min_size=1, max_size=8))
def test_epoch_units_of_a_column_are_those_of_each_value_alone(values: list[int | None]) -> None:
    # A column whose magnitudes share a unit converts in one step; mixed ones value by value.
    alone = [to_ns(pa.array([v], pa.int64())).item() for v in values]
    assert to_ns(pa.array(values, pa.int64())).to_list() == alone
