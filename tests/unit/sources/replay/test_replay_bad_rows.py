"""ReplaySource bad rows: the first one named by file, row and field, or skipped and counted."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from source_helpers import collect, write_text

from market_data_pipeline.errors import BadInputError
from market_data_pipeline.sources.replay.source import ReplaySource

GOOD = "A,2024-01-02T03:04:05Z,10,1"

TRADE_CASES = [
    # (bad line, reason, field as written in the header)
    ("A,not-a-time,10,1", "bad timestamp", "Time"),
    ("A,,10,1", "bad timestamp", "Time"),
    (",2024-01-02T03:04:05Z,10,1", "missing symbol", "Sym"),
    # Past what a store's key can hold (PostgreSQL refuses index entries over ~2.7 kB).
    ("S" * 257 + ",2024-01-02T03:04:05Z,10,1", "symbol over 256 bytes", "Sym"),
    ("é" * 129 + ",2024-01-02T03:04:05Z,10,1", "symbol over 256 bytes", "Sym"),
    ("A,2024-01-02T03:04:05Z,,1", "bad price", "Px"),
    ("A,2024-01-02T03:04:05Z,nan,1", "bad price", "Px"),
    ("A,2024-01-02T03:04:05Z,inf,1", "bad price", "Px"),
    ("A,2024-01-02T03:04:05Z,0,1", "bad price", "Px"),
    ("A,2024-01-02T03:04:05Z,-3,1", "bad price", "Px"),
    ("A,2024-01-02T03:04:05Z,abc,1", "bad price", "Px"),
    ("A,2024-01-02T03:04:05Z,10,-1", "bad size", "Qty"),
    ("A,2024-01-02T03:04:05Z,10,x", "bad size", "Qty"),
]


def trades_file(tmp_path: Path, bad: str, at: int = 3, rows: int = 6) -> Path:
    lines = [GOOD] * rows
    lines[at - 2] = bad  # line 1 is the header
    return write_text(tmp_path / "t.csv", "\n".join(["Sym,Time,Px,Qty", *lines]))


@pytest.mark.parametrize(("bad", "reason", "field"), TRADE_CASES)
async def test_fail_names_file_line_and_field(
    tmp_path: Path, bad: str, reason: str, field: str
) -> None:
    path = trades_file(tmp_path, bad, at=4)
    with pytest.raises(BadInputError) as info:
        await collect(ReplaySource([path]))
    err = info.value
    assert (err.path, err.row, err.field) == (str(path), 4, field)
    assert err.reason.startswith(reason)
    assert str(path) in str(err) and "row 4" in str(err)


@pytest.mark.parametrize(("bad", "reason", "field"), TRADE_CASES)
async def test_skip_drops_and_counts(tmp_path: Path, bad: str, reason: str, field: str) -> None:
    source = ReplaySource([trades_file(tmp_path, bad, at=4)], on_bad_row="skip")
    out = await collect(source)
    assert out.height == 5
    assert source.bad_rows == 1
    assert source.bad_reasons == {reason: 1}


async def test_first_bad_row_is_reported(tmp_path: Path) -> None:
    lines = ["Sym,Time,Px,Qty", GOOD, GOOD, "A,x,10,1", GOOD, "A,2024-01-02,0,1"]
    path = write_text(tmp_path / "t.csv", "\n".join(lines))
    with pytest.raises(BadInputError) as info:
        await collect(ReplaySource([path], chunk_rows=2))
    assert (info.value.row, info.value.field) == (4, "Time")


async def test_row_numbers_count_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(f"Sym,Time,Px,Qty\n{GOOD}\n\n{GOOD}\nA,2024-01-02,-1,1\n\n")
    with pytest.raises(BadInputError) as info:
        await collect(ReplaySource([path]))
    assert info.value.row == 5
    source = ReplaySource([path], on_bad_row="skip")
    assert (await collect(source)).height == 2
    assert source.bad_reasons == {"bad price": 1}  # blank lines carry no tick and are not counted


async def test_malformed_line(tmp_path: Path) -> None:
    path = write_text(tmp_path / "t.csv", f"Sym,Time,Px,Qty\n{GOOD}\n{GOOD}\nA,1\n{GOOD}")
    with pytest.raises(BadInputError, match="malformed row") as info:
        await collect(ReplaySource([path]))
    assert (info.value.path, info.value.row) == (str(path), 4)
    source = ReplaySource([path], on_bad_row="skip")
    assert (await collect(source)).height == 3
    assert source.bad_reasons == {"malformed row": 1}


async def test_skip_counts_several_reasons(tmp_path: Path) -> None:
    lines = ["Sym,Time,Px,Qty", GOOD, "A,x,1,1", ",2024-01-02,1,1", "A,x,0,1", "A,2024-01-02,0,1"]
    source = ReplaySource([write_text(tmp_path / "t.csv", "\n".join(lines))], on_bad_row="skip")
    out = await collect(source)
    assert out.height == 1
    assert source.bad_reasons == {"bad timestamp": 2, "missing symbol": 1, "bad price": 1}
    assert source.bad_rows == 4


@pytest.mark.parametrize(
    ("row", "reason", "field"),
    [
        ("A,1,,2,1,1", "no bid/ask", "bid"),
        ("A,1,1,,1,1", "no bid/ask", "ask"),
        ("A,1,0,2,1,1", "bad bid/ask", "bid"),
        ("A,1,1,nan,1,1", "bad bid/ask", "ask"),
        ("A,1,1,2,-1,1", "bad size", "bid_size"),
    ],
)
async def test_quote_bad_rows(tmp_path: Path, row: str, reason: str, field: str) -> None:
    path = write_text(
        tmp_path / "q.csv", f"symbol,ts,bid,ask,bid_size,ask_size\nA,1,1,2,1,1\n{row}"
    )
    with pytest.raises(BadInputError) as info:
        await collect(ReplaySource([path]))
    assert (info.value.row, info.value.field) == (3, field)
    assert info.value.reason.startswith(reason)


async def test_na_is_a_symbol_not_a_missing_value(tmp_path: Path) -> None:
    path = write_text(tmp_path / "t.csv", "symbol,ts,price\nNA,1,2")
    assert (await collect(ReplaySource([path])))["symbol"].to_list() == ["NA"]


async def test_crossed_quotes_are_kept(tmp_path: Path) -> None:
    path = write_text(tmp_path / "q.csv", "symbol,ts,bid,ask\nA,1,2.0,1.0")
    assert (await collect(ReplaySource([path])))["price"].to_list() == [1.5]


@pytest.mark.parametrize(
    ("row", "reason", "field"),
    [
        ("A,1,10,9,11,10,5", "high < low", "high"),
        ("A,1,13,12,9,11,5", "bad high/low", "high"),
        ("A,1,10,12,9,8,5", "bad high/low", "high"),
        ("A,1,10,12,9,11,-5", "bad volume", "volume"),
        ("A,1,10,12,9,nan,5", "bad price", "close"),
        ("A,1,-1,12,9,11,5", "bad price", "open"),
    ],
)
async def test_bar_bad_rows(tmp_path: Path, row: str, reason: str, field: str) -> None:
    header = "symbol,ts,open,high,low,close,volume"
    path = write_text(tmp_path / "b.csv", f"{header}\nA,1,10,12,9,11,5\n{row}")
    with pytest.raises(BadInputError) as info:
        await collect(ReplaySource([path]))
    assert (info.value.row, info.value.field) == (3, field)
    assert info.value.reason.startswith(reason)
    source = ReplaySource([path], on_bad_row="skip")
    assert (await collect(source)).height == 1
    assert source.bad_reasons == {reason: 1}


async def test_parquet_rows_are_numbered_from_one(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    table = pa.table({"symbol": ["A", "A", "A"], "ts": [1, 2, 3], "price": [1.0, -1.0, 1.0]})
    pq.write_table(table, path)
    with pytest.raises(BadInputError) as info:
        await collect(ReplaySource([path], chunk_rows=1))
    assert (info.value.row, info.value.field) == (2, "price")


BLANKISH = (
    "ts,symbol,price,size,note\n1704067200,AAA,10,1,a\n,,,,hello\n,,,,\n\n1704067202,AAA,12,1,c\n"
)


async def test_a_line_with_only_unread_fields_is_a_bad_row_not_blank(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(BLANKISH)
    with pytest.raises(BadInputError, match="bad timestamp") as info:
        await collect(ReplaySource([path]))
    assert (info.value.row, info.value.field) == (3, "ts")


async def test_only_lines_with_every_field_empty_are_passed_over(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(BLANKISH)
    source = ReplaySource([path], on_bad_row="skip", chunk_rows=2)
    assert (await collect(source)).height == 2
    assert source.bad_reasons == {"bad timestamp": 1}  # ",,,,hello"; ",,,," and "" are blank
