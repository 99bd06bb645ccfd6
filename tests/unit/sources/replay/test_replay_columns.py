"""ReplaySource: column aliases, kind detection, symbol argument, unnamed index columns."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from source_helpers import collect, write_text

from market_data_pipeline import frames
from market_data_pipeline.errors import BadInputError
from market_data_pipeline.sources.replay.source import ReplaySource

T0 = 1_704_164_645_000_000_000  # 2024-01-02T03:04:05Z


@pytest.mark.parametrize(
    ("ts", "sym", "price", "size"),
    [
        ("ts", "symbol", "price", "size"),
        ("time", "Ticker", "PX", "qty"),
        ("Timestamp", "sym", "last", "Quantity"),
        ("DATE", "instrument", "Price", "volume"),
        ("datetime", "SYMBOL", "px", "Size"),
    ],
)
async def test_trade_aliases(tmp_path: Path, ts: str, sym: str, price: str, size: str) -> None:
    path = write_text(
        tmp_path / "t.csv",
        f"""{sym},{ts},{price},{size}
        AAPL,2024-01-02T03:04:05Z,101.5,7""",
    )
    source = ReplaySource([path])
    assert source.kind == "trades"
    out = await collect(source)
    assert out.to_dicts() == [{"symbol": "AAPL", "ts_ns": T0, "price": 101.5, "size": 7.0}]


@pytest.mark.parametrize(
    ("bid_size", "ask_size"),
    [
        ("bid_size", "ask_size"),
        ("BidSize", "AskSize"),
        ("bid_qty", "ask_qty"),
        ("Bid Size", "Ask Size"),
    ],
)
async def test_quote_aliases_and_mid(tmp_path: Path, bid_size: str, ask_size: str) -> None:
    path = write_text(
        tmp_path / "q.csv",
        f"""symbol,ts,Bid,ASK,{bid_size},{ask_size}
        EURUSD,2024-01-02T03:04:05Z,1.1,1.3,100,200""",
    )
    source = ReplaySource([path])
    assert source.kind == "quotes"
    out = await collect(source)
    assert list(out.schema) == [*frames.TICK_SCHEMA, *frames.QUOTE_EXTRA_SCHEMA]
    row = out.row(0, named=True)
    assert row["price"] == pytest.approx(1.2)
    assert (row["size"], row["bid"], row["ask"]) == (0.0, 1.1, 1.3)
    assert (row["bid_size"], row["ask_size"]) == (100.0, 200.0)


async def test_quotes_without_sizes_have_null_sizes(tmp_path: Path) -> None:
    path = write_text(tmp_path / "q.csv", "symbol,ts,bid,ask\nX,1,1,2")
    out = await collect(ReplaySource([path]))
    assert out["bid_size"].to_list() == [None]


async def test_bars_detected_and_volume_is_not_a_size(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "b.csv",
        """Date,Symbol,Open,High,Low,Close,Volume,VWAP,Trades
        2024-01-02,SPY,10,12,9,11,1000,10.5,40
        2024-01-03,SPY,11,11,10,10,500,,""",
    )
    source = ReplaySource([path])
    assert source.kind == "bars"
    out = await collect(source)
    assert dict(out.schema) == frames.BAR_INPUT_SCHEMA
    assert out.to_dicts() == [
        {"symbol": "SPY", "ts_ns": 1_704_153_600_000_000_000, "open": 10.0, "high": 12.0,
         "low": 9.0, "close": 11.0, "volume": 1000.0, "vwap": 10.5, "trades": 40},
        {"symbol": "SPY", "ts_ns": 1_704_240_000_000_000_000, "open": 11.0, "high": 11.0,
         "low": 10.0, "close": 10.0, "volume": 500.0, "vwap": None, "trades": None},
    ]  # fmt: skip


async def test_bars_without_volume_have_zero_volume(tmp_path: Path) -> None:
    path = write_text(tmp_path / "b.csv", "ts,open,high,low,close\n1,1,2,1,2")
    out = await collect(ReplaySource([path], symbol="X"))
    assert out["volume"].to_list() == [0.0]


async def test_trades_without_size_column_have_size_zero(tmp_path: Path) -> None:
    path = write_text(tmp_path / "t.csv", "ts,price\n1,2")
    out = await collect(ReplaySource([path], symbol="X"))
    assert out.to_dicts() == [{"symbol": "X", "ts_ns": 1_000_000_000, "price": 2.0, "size": 0.0}]


@pytest.mark.parametrize("header", ["", "Unnamed: 0"])
async def test_unnamed_first_column_is_the_timestamp(tmp_path: Path, header: str) -> None:
    path = write_text(
        tmp_path / "idx.csv",
        f"""{header},price,size
        2024-01-02 03:04:05+00:00,10,1""",
    )
    out = await collect(ReplaySource([path], symbol="AAPL"))
    assert out["ts_ns"].to_list() == [T0]


async def test_symbol_argument_names_a_single_instrument_file(tmp_path: Path) -> None:
    path = write_text(tmp_path / "t.csv", "ts,price,size\n2024-01-02T03:04:05Z,10,1")
    out = await collect(ReplaySource([path], symbol="MSFT"))
    assert out["symbol"].to_list() == ["MSFT"]


def test_no_symbol_column_and_no_argument_fails(tmp_path: Path) -> None:
    path = write_text(tmp_path / "t.csv", "ts,price,size\n1,10,1")
    with pytest.raises(BadInputError, match="symbol") as info:
        ReplaySource([path])
    assert info.value.path == str(path)


def test_columns_fitting_no_kind_name_the_file(tmp_path: Path) -> None:
    path = write_text(tmp_path / "odd.csv", "when,what\n1,2")
    with pytest.raises(BadInputError, match="fit no kind") as info:
        ReplaySource([path], symbol="X")
    assert info.value.path == str(path)


def test_explicit_kind_must_fit(tmp_path: Path) -> None:
    path = write_text(tmp_path / "t.csv", "symbol,ts,price\nA,1,2")
    with pytest.raises(BadInputError, match="lack bid, ask for quotes"):
        ReplaySource([path], kind="quotes")


async def test_explicit_kind_picks_among_columns(tmp_path: Path) -> None:
    path = write_text(tmp_path / "tq.csv", "symbol,ts,price,size,bid,ask\nA,1,2,3,1.5,2.5")
    assert ReplaySource([path]).kind == "quotes"
    trades = await collect(ReplaySource([path], kind="trades"))
    assert trades.to_dicts() == [{"symbol": "A", "ts_ns": 10**9, "price": 2.0, "size": 3.0}]


async def test_semicolon_delimiter_bom_and_spaces(tmp_path: Path) -> None:
    path = tmp_path / "eu.csv"
    path.write_bytes("\ufeffSymbol ; Time ; Price\nA;1; 2.5 \n".encode())
    out = await collect(ReplaySource([path]))
    assert out.select("symbol", "price").to_dicts() == [{"symbol": "A", "price": 2.5}]


async def test_parquet_typed_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pl.DataFrame(
        {
            "Ticker": pl.Series(["A", "B"], dtype=pl.Categorical),
            "Timestamp": pl.Series([T0, T0 + 1], dtype=pl.Datetime("ns", "UTC")),
            "Px": pl.Series([1, 2], dtype=pl.Int32),
            "Qty": [1.5, 2.0],
        }
    ).write_parquet(path)
    out = await collect(ReplaySource([path]))
    assert out.to_dicts() == [
        {"symbol": "A", "ts_ns": T0, "price": 1.0, "size": 1.5},
        {"symbol": "B", "ts_ns": T0 + 1, "price": 2.0, "size": 2.0},
    ]


async def test_parquet_pandas_index_column(tmp_path: Path) -> None:
    path = tmp_path / "bars.parquet"
    pl.DataFrame(
        {
            "open": [1.0], "high": [2.0], "low": [0.5], "close": [1.5], "volume": [10.0],
            "__index_level_0__": pl.Series([T0 // 1000], dtype=pl.Datetime("us")),
        }
    ).write_parquet(path)  # fmt: skip
    source = ReplaySource([path], symbol="X")
    assert source.kind == "bars"
    out = await collect(source)
    assert out["ts_ns"].to_list() == [T0]


@pytest.mark.parametrize(
    ("header", "said"),
    [
        (
            "symbol,ts,price,price",
            "two columns named 'price' (columns 3 and 4) both give the price",
        ),
        ("symbol,time,ts,price", "columns 'ts' and 'time' (columns 3 and 2) both give the ts"),
        ("symbol,ts,Bid,bid_price,ask", "columns 'Bid' and 'bid_price' (columns 3 and 4)"),
    ],
)
def test_two_columns_for_one_field_are_an_error_naming_both(
    tmp_path: Path, header: str, said: str
) -> None:
    row = ",".join(
        ["A", *["1704186000000"] * (header.count(",") - 1), "2"][: header.count(",") + 1]
    )
    path = write_text(tmp_path / "t.csv", f"{header}\n{row}")
    with pytest.raises(BadInputError, match=re.escape(said)) as info:
        ReplaySource([path])
    assert info.value.path == str(path)


def test_parquet_with_a_duplicated_price_column_is_an_error_naming_both(tmp_path: Path) -> None:
    path = tmp_path / "dup.parquet"
    table = pa.table(
        [pa.array(["A"]), pa.array([1_704_186_000_000]), pa.array([1.0]), pa.array([2.0])],
        names=["symbol", "ts", "price", "price"],
    )
    pq.write_table(table, path)
    with pytest.raises(BadInputError, match="two columns named 'price'"):
        ReplaySource([path])


async def test_a_uint64_size_past_every_real_one_is_a_bad_row_not_a_failed_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "u64.parquet"
    sizes = pa.array([1, 2**64 - 1], pa.uint64())
    pq.write_table(
        pa.table({"symbol": ["A", "A"], "ts": [1, 2], "price": [1.0, 2.0], "size": sizes}), path
    )
    source = ReplaySource([path], on_bad_row="skip")
    out = await collect(source)
    assert out["size"].to_list() == [1.0]
    assert source.bad_reasons == {"bad size": 1}


async def test_a_boolean_price_column_is_bad_rows_not_prices_of_one(tmp_path: Path) -> None:
    path = tmp_path / "bool.parquet"
    pq.write_table(pa.table({"symbol": ["A"], "ts": [1], "price": [True], "size": [1.0]}), path)
    source = ReplaySource([path], on_bad_row="skip")
    out = await collect(source)
    assert out.height == 0
    assert source.bad_reasons == {"bad price": 1}
