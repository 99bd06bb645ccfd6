"""Real exports through ``mdp run``: presets, header-less columns, strftime dates, compression."""

from __future__ import annotations

import bz2
import gzip
import lzma
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

from market_data_pipeline.sinks import read_bars

from .conftest import Mdp

DATA = Path(__file__).parent / "data"
AGGTRADES = DATA / "BTCUSDT-aggTrades-2024-03-01.csv"
KLINES = DATA / "BTCUSDT-1m-2024-03-01.csv"
TARDIS = DATA / "tardis-bitmex-trades-2020-04-01.csv"
SP500 = DATA / "sp500-daily-1999.csv"
T0_NS = 1_709_251_200 * 10**9  # 2024-03-01T00:00:00Z
MINUTE_NS = 60 * 10**9


def compressed(source: Path, target_dir: Path, suffix: str) -> Path:
    """Copy ``source`` to ``target_dir`` compressed by ``suffix`` ("" for none)."""
    data = source.read_bytes()
    target = target_dir / (source.name + suffix)
    if suffix == ".gz":
        target.write_bytes(gzip.compress(data))
    elif suffix == ".bz2":
        target.write_bytes(bz2.compress(data))
    elif suffix == ".xz":
        target.write_bytes(lzma.compress(data))
    elif suffix in (".zst", ".zstd"):
        with pa.CompressedOutputStream(str(target), "zstd") as out:
            out.write(data)
    else:
        target.write_bytes(data)
    return target


def run_to_sqlite(mdp: Mdp, tmp_path: Path, *args: str) -> tuple[dict[str, object], pl.DataFrame]:
    sink = f"sqlite:///{tmp_path / 'bars.db'}"
    code, summary = mdp.run_json(*args, "--sink", sink)
    assert code == 0, summary
    assert summary["reconciled"] is True
    return summary, read_bars(sink).sort("symbol", "resolution", "ts_ns")


@pytest.mark.parametrize("suffix", ["", ".gz", ".bz2", ".xz", ".zst", ".zstd"])
def test_binance_aggtrades_in_every_compression(mdp: Mdp, tmp_path: Path, suffix: str) -> None:
    path = compressed(AGGTRADES, tmp_path, suffix)
    args = ("--input", str(path), "--format", "binance-aggtrades", "--symbol", "BTCUSDT")
    summary, bars = run_to_sqlite(mdp, tmp_path, *args)
    assert summary["ticks_read"] == 6
    assert bars["ts_ns"].to_list() == [T0_NS, T0_NS + MINUTE_NS, T0_NS + 2 * MINUTE_NS]
    assert bars["volume"][0] == pytest.approx(0.00512 + 0.01 + 0.25)
    assert bars["open"][0] == 61130.01
    assert bars["close"][1] == 61140.10


def test_binance_klines_resample(mdp: Mdp, tmp_path: Path) -> None:
    args = ("--input", str(KLINES), "--format", "binance-klines", "--symbol", "BTCUSDT")
    _, bars = run_to_sqlite(mdp, tmp_path, *args, "--resolution", "5m")
    assert bars.select("ts_ns", "open", "high", "low", "close", "trades").row(0) == (
        T0_NS,
        61130.01,
        61200.0,
        61090.0,
        61125.0,
        1520 + 1011 + 1833 + 602,
    )
    assert bars["volume"][0] == pytest.approx(12.5041 + 8.102 + 15.0 + 4.25)


def test_tardis_trades_with_their_header(mdp: Mdp, tmp_path: Path) -> None:
    path = compressed(TARDIS, tmp_path, ".gz")
    _, bars = run_to_sqlite(mdp, tmp_path, "--input", str(path), "--format", "tardis-trades")
    t0 = 1_585_699_200 * 10**9
    assert bars.select("symbol", "ts_ns", "volume").rows() == [
        ("ETHUSD", t0, 40.0),
        ("XBTUSD", t0, 1250.0),
        ("XBTUSD", t0 + MINUTE_NS, 75.0),
    ]


def test_us_dates_without_ts_format_fail_naming_the_row(mdp: Mdp, tmp_path: Path) -> None:
    result = mdp("run", "--input", str(SP500), "--symbol", "SPX", "--sink", "sqlite:///:memory:")
    assert result.exit_code == 2
    assert "row 2" in result.stderr and "bad timestamp ('1/4/1999')" in result.stderr


def test_columns_name_a_header_less_file(mdp: Mdp, tmp_path: Path) -> None:
    rows = [f"{T0_NS // 10**6 + i * 20_000},{100 + i},{i + 1}" for i in range(6)]
    path = tmp_path / "ticks.csv"
    path.write_text("\n".join(rows) + "\n")
    args = ("--input", str(path), "--columns", "ts,price,size", "--symbol", "X")
    summary, bars = run_to_sqlite(mdp, tmp_path, *args)
    assert summary["ticks_read"] == 6
    assert bars["volume"].to_list() == [6.0, 15.0]
    # The same names as a first line are a header, not a bad row.
    path.write_text("ts,price,size\n" + "\n".join(rows) + "\n")
    summary, _ = run_to_sqlite(mdp, tmp_path, *args)
    assert summary["ticks_read"] == 6


def test_columns_of_the_wrong_width_are_refused(mdp: Mdp, tmp_path: Path) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text("1709251200000,100,1\n")
    result = mdp("run", "--input", str(path), "--columns", "ts,price", "--symbol", "X")
    assert result.exit_code == 2
    assert "line 1 has 3 fields but the layout names 2: ts,price" in result.stderr


def test_naive_times_in_a_zone(mdp: Mdp, tmp_path: Path) -> None:
    path = tmp_path / "es.csv"
    path.write_text("ts,price,size\n2024-03-11 08:30:00,5100.25,2\n2024-03-11 08:30:30,5101,1\n")
    args = ("--input", str(path), "--symbol", "ES", "--tz", "America/Chicago")
    _, bars = run_to_sqlite(mdp, tmp_path, *args)
    assert bars["ts_ns"].to_list() == [1_710_163_800 * 10**9]  # 13:30 UTC (CDT, UTC-5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--resolution", "1M"), "write 1mo for a month or 1min for a minute"),
        (("--resolution", "1Y"), "write 1y for a year"),
        (("--tz", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
        (("--format", "csv-ish"), "'csv-ish' is not one of"),
    ],
)
def test_refused_options(mdp: Mdp, tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = mdp("run", "--input", str(TARDIS), *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_90m_from_hourly_bars_is_refused_naming_both(mdp: Mdp, tmp_path: Path) -> None:
    path = tmp_path / "hourly.csv"
    lines = [f"2024-03-01T{h:02d}:00:00Z,10,11,9,10.5,100" for h in range(6)]
    path.write_text("ts,open,high,low,close,volume\n" + "\n".join(lines) + "\n")
    args = ("--input", str(path), "--symbol", "X", "--resolution", "2h,90m")
    result = mdp("run", *args, "--sink", f"sqlite:///{tmp_path / 'b.db'}")
    assert result.exit_code == 2
    assert "cannot build 90m bars from input bars 1h apart" in result.stderr


def test_us_dates_with_ts_format_make_monday_weeks(mdp: Mdp, tmp_path: Path) -> None:
    args = ("--input", str(SP500), "--symbol", "SPX", "--ts-format", "%m/%d/%Y")
    _, bars = run_to_sqlite(mdp, tmp_path, *args, "--resolution", "1w")
    monday = 915_408_000 * 10**9  # 1999-01-04T00:00:00Z, a Monday
    assert bars["ts_ns"].to_list() == [monday, monday + 7 * 86_400 * 10**9]
    assert bars["close"].to_list() == [1275.09, 1263.88]
