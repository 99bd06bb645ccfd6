"""The ``revision`` column (allowed lateness) and the late-tick table, in SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
from typing import Any

import polars as pl
import pytest

from market_data_pipeline import frames
from market_data_pipeline.late_output import LateOutput, parse_late_output
from market_data_pipeline.sinks import open_sink, read_bars

T0 = 1_704_187_800_000_000_000  # 2024-01-02T09:30:00Z

_OLD_SQLITE = """
CREATE TABLE bars (
    symbol TEXT NOT NULL, resolution TEXT NOT NULL, ts TEXT NOT NULL, open REAL NOT NULL,
    high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL,
    vwap REAL, trades INTEGER, PRIMARY KEY (symbol, resolution, ts)
) WITHOUT ROWID
"""
_OLD_POSTGRES = """
CREATE TABLE bars (
    symbol text NOT NULL, resolution text NOT NULL, ts timestamptz NOT NULL,
    open double precision NOT NULL, high double precision NOT NULL,
    low double precision NOT NULL, close double precision NOT NULL,
    volume double precision NOT NULL, vwap double precision, trades bigint,
    PRIMARY KEY (symbol, resolution, ts)
)
"""


def _query(url: str, sql: str) -> list[tuple[Any, ...]]:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return conn.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def _execute(url: str, sql: str) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute(sql)
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def bars(n: int, *, start: int = 0, price: float = 1.5) -> pl.DataFrame:
    idx = range(start, start + n)
    return pl.DataFrame(
        {
            "symbol": ["AAPL"] * n,
            "resolution": ["1m"] * n,
            "ts_ns": [T0 + i * 60_000_000_000 for i in idx],
            "open": [price] * n,
            "high": [price + 1] * n,
            "low": [price - 1] * n,
            "close": [price] * n,
            "volume": [float(i + 1) for i in idx],
            "vwap": [price] * n,
            "trades": [i + 1 for i in idx],
            "end_ts_ns": [None] * n,
            "incomplete": [False] * n,
        },
        schema=frames.BAR_SCHEMA,
    )


async def write(url: str, frame: pl.DataFrame) -> None:
    sink = open_sink(url)
    await sink.open()
    await sink.write_frame(frame)
    await sink.close()


def revised(frame: pl.DataFrame, revision: int) -> pl.DataFrame:
    return frame.with_columns(pl.lit(revision, pl.Int64).alias("revision"))


async def test_a_revised_bar_replaces_the_row_with_its_revision(sink_url: str) -> None:
    await write(sink_url, revised(bars(5), 0))
    await write(sink_url, revised(bars(2, start=1, price=9.5), 3))
    rows = _query(sink_url, "SELECT volume, open, revision FROM bars ORDER BY ts")
    assert [(r[1], r[2]) for r in rows] == [(1.5, 0), (9.5, 3), (9.5, 3), (1.5, 0), (1.5, 0)]


async def test_bars_without_a_revision_are_stored_with_revision_0(sink_url: str) -> None:
    await write(sink_url, bars(4))
    assert _query(sink_url, "SELECT DISTINCT revision FROM bars") == [(0,)]
    assert read_bars(sink_url).height == 4


async def test_a_table_made_before_revisions_gets_the_column_in_place(sink_url: str) -> None:
    _execute(sink_url, _OLD_SQLITE if sink_url.startswith("sqlite") else _OLD_POSTGRES)
    _execute(
        sink_url,
        "INSERT INTO bars VALUES ('OLD', '1m', '2024-01-02T09:30:00.000000Z', 1, 2, 0.5, 1.5,"
        " 10, 1.2, 3)",
    )
    await write(sink_url, revised(bars(2), 1))
    rows = _query(sink_url, "SELECT symbol, revision FROM bars ORDER BY symbol, ts")
    assert rows == [("AAPL", 1), ("AAPL", 1), ("OLD", 0)]


@pytest.mark.parametrize("transactional", [False, True])
async def test_late_ticks_go_to_a_table_in_the_same_store(
    sink_url: str, transactional: bool
) -> None:
    late = pl.DataFrame(
        {
            "symbol": ["A", "B"],
            "ts_ns": [1_000, 2_000],
            "price": [1.5, 2.5],
            "size": [1.0, 2.0],
            "reason": ["beyond allowed lateness"] * 2,
            "resolutions": ["1s,1m", "1s"],
            "window": [0, 0],
            "window_end": [60_000_000_000, 1_000_000_000],
            "watermark_ns": [90_000_000_000, 5_000_000_000],
        }
    )
    sink = open_sink(sink_url, transactional=transactional)
    await sink.open()
    output = LateOutput(parse_late_output("table:late_ticks"), sink)
    await output.write(late)
    await sink.close(commit=True)
    rows = _query(sink_url, "SELECT symbol, ts_ns, resolutions, window_end_ns FROM late_ticks")
    assert sorted(rows) == [("A", 1_000, "1s,1m", 60_000_000_000), ("B", 2_000, "1s", 10**9)]
    assert output.rows == 2
