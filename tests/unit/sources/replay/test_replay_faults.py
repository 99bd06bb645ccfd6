"""Inputs found under attack: out-of-range times, binary files, odd types and sizes, odd paths.

Each was a silent corruption or a traceback before; each must now be a bad row or a one-line
``BadInputError`` naming the file (and the row where there is one).
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from source_helpers import collect, write_text

from market_data_pipeline.errors import BadInputError
from market_data_pipeline.sources.replay.source import ReplaySource, expand_inputs
from market_data_pipeline.sources.timestamps import MAX_TS_NS, MIN_TS_NS, to_ns


@pytest.mark.parametrize(
    "text", ["1677-01-01T00:00:00Z", "9999-12-31", "1000-01-01", "2262-06-01T00:00:00+00:00"]
)
async def test_timestamp_outside_the_range_is_a_bad_row(tmp_path: Path, text: str) -> None:
    path = write_text(tmp_path / "t.csv", f"symbol,ts,price\nA,2024-01-02T00:00:00Z,1\nA,{text},1")
    with pytest.raises(BadInputError) as caught:
        await collect(ReplaySource([path]))
    assert caught.value.row == 3
    assert caught.value.field == "ts"
    assert "bad timestamp" in caught.value.reason


async def test_one_far_future_row_does_not_reach_the_bar_engine(tmp_path: Path) -> None:
    rows = [f"NVDA,2024-01-02T09:{i // 60:02d}:{i % 60:02d}Z,{100 + i % 7}" for i in range(3000)]
    rows.insert(1000, "NVDA,1677-01-01T00:00:00Z,100")
    path = write_text(tmp_path / "t.csv", "symbol,ts,price\n" + "\n".join(rows))
    source = ReplaySource([path], on_bad_row="skip")
    out = await collect(source)
    assert out.height == 3000
    assert (out["ts_ns"] < 1_704_240_000 * 10**9).all()  # nothing moved into 2261
    assert source.bad_reasons == {"bad timestamp": 1}


def test_every_parser_keeps_to_the_range() -> None:
    strings = pa.array(["1677-09-22T00:00:00Z", "2024-01-02", "2261-12-31T23:59:59Z"])
    assert to_ns(strings).to_list()[0] is None
    assert to_ns(strings).to_list()[2] is not None
    dates = pa.array([date(9999, 12, 31), date(1, 1, 1), date(2024, 1, 2)], pa.date32())
    assert to_ns(dates).to_list()[:2] == [None, None]
    stamps = pa.array([MIN_TS_NS - 1, MIN_TS_NS, MAX_TS_NS - 1, MAX_TS_NS], pa.timestamp("ns"))
    assert to_ns(stamps).to_list() == [None, MIN_TS_NS, MAX_TS_NS - 1, None]
    epochs = pa.array([MAX_TS_NS, 2**63 - 1], pa.int64())
    assert to_ns(epochs, "ns").to_list() == [None, None]


@pytest.mark.parametrize("seconds", [10_000_000_000, 253_402_300_800 * 4])  # 2286, year ~34000
async def test_parquet_seconds_beyond_2262_is_a_bad_row(tmp_path: Path, seconds: int) -> None:
    path = tmp_path / "t.parquet"
    ts = pa.array([1_704_186_000, seconds], pa.timestamp("s"))
    pq.write_table(pa.table({"symbol": ["A", "A"], "ts": ts, "price": [1.0, 2.0]}), path)
    with pytest.raises(BadInputError) as caught:
        await collect(ReplaySource([path]))
    assert (caught.value.row, caught.value.field) == (2, "ts")


async def test_cr_only_line_endings_are_read(tmp_path: Path) -> None:
    path = tmp_path / "cr.csv"
    path.write_bytes(b"symbol,ts,price\rA,2024-01-02T00:00:00Z,1\rA,2024-01-02T00:00:01Z,2\r")
    out = await collect(ReplaySource([path]))
    assert out["price"].to_list() == [1.0, 2.0]


@pytest.mark.parametrize(
    "content",
    [b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4, b"\x00\x01\x02abc\n\x00\n"],
)
def test_a_binary_file_named_csv_is_one_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(content)
    with pytest.raises(BadInputError, match=r"x\.csv"):
        ReplaySource([path])


async def test_a_latin1_byte_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "l.csv"
    path.write_bytes(b"symbol,ts,price\nA,2024-01-02T00:00:00Z,1\nB\xe9,2024-01-02T00:00:01Z,2\n")
    with pytest.raises(BadInputError) as caught:
        await collect(ReplaySource([path]))
    assert caught.value.row == 3
    assert "UTF-8" in caught.value.reason


async def test_a_huge_field_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text(
        "symbol,ts,price\nA,2024-01-02T00:00:00Z,1\nA,2024-01-02T00:00:01Z," + "1" * 5_000_000
    )
    with pytest.raises(BadInputError) as caught:
        await collect(ReplaySource([path]))
    assert caught.value.row == 3
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize(
    "prices",
    [
        pa.array([[1.0], [2.0]], pa.list_(pa.float64())),
        pa.array([{"x": 1.0}, {"x": 2.0}]),
        pa.array([b"1", b"2"], pa.binary()),
    ],
)
async def test_a_price_column_of_another_type_is_a_bad_row(
    tmp_path: Path, prices: pa.Array
) -> None:
    path = tmp_path / "t.parquet"
    ts = pa.array([1_704_186_000_000, 1_704_186_001_000], pa.timestamp("ms"))
    pq.write_table(pa.table({"symbol": ["A", "A"], "ts": ts, "price": prices}), path)
    with pytest.raises(BadInputError) as caught:
        await collect(ReplaySource([path]))
    assert (caught.value.row, caught.value.field) == (1, "price")


@pytest.mark.parametrize(("column", "reason"), [("price", "bad price"), ("size", "bad size")])
async def test_values_that_overflow_sums_are_bad_rows(
    tmp_path: Path, column: str, reason: str
) -> None:
    values = {"price": "1", "size": "1", column: "1e308"}
    path = write_text(
        tmp_path / "t.csv",
        f"symbol,ts,price,size\nA,2024-01-02T00:00:00Z,{values['price']},{values['size']}",
    )
    with pytest.raises(BadInputError, match=reason):
        await collect(ReplaySource([path]))


async def test_parquet_decimals_keep_their_value(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    price = pa.array([Decimal("100.96"), Decimal("0.07")], pa.decimal128(12, 2))
    ts = pa.array([1_704_186_000_000, 1_704_186_001_000], pa.timestamp("ms"))
    pq.write_table(pa.table({"symbol": ["A", "A"], "ts": ts, "price": price}), path)
    out = await collect(ReplaySource([path]))
    assert out["price"].to_list() == [100.96, 0.07]


def test_a_directory_fifo_or_device_is_named_as_such(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, kind in ((tmp_path, "directory"), (fifo, "FIFO"), (Path("/dev/null"), "device")):
        with pytest.raises(BadInputError, match=kind):
            expand_inputs(str(path))


def test_a_utc_timestamp_column_converts() -> None:
    stamp = pa.array([datetime(2024, 1, 2, tzinfo=UTC)], pa.timestamp("s", "UTC"))
    assert to_ns(stamp).to_list() == [1_704_153_600_000_000_000]
