"""A ``bars`` table made before ``end_ts`` and ``incomplete`` existed keeps working."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import polars as pl

from market_data_pipeline import frames
from market_data_pipeline.sinks import read_bars
from market_data_pipeline.sinks.sqlite import SqliteSink

OLD_TABLE = """
CREATE TABLE bars (
    symbol TEXT NOT NULL, resolution TEXT NOT NULL, ts TEXT NOT NULL,
    open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL,
    volume REAL NOT NULL, vwap REAL, trades INTEGER,
    PRIMARY KEY (symbol, resolution, ts)
) WITHOUT ROWID
"""


def test_an_old_sqlite_table_is_read_with_defaults_and_gains_the_columns_on_write(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute(OLD_TABLE)
        conn.execute(
            "INSERT INTO bars VALUES ('ES', '1m', '2024-01-02T09:30:00.000000Z',"
            " 1, 2, 0.5, 1.5, 10, 1.2, 3)"
        )
    before = read_bars(f"sqlite:///{path}")
    assert before.select("end_ts_ns", "incomplete").rows() == [(None, False)]

    bar = pl.DataFrame(
        [("ES", "5tick", 1_704_187_800_000_001_000, 1.0, 2.0, 0.5, 1.5, 10.0, 1.2, 5,
          1_704_187_801_000_000_000, True)],
        schema=frames.BAR_SCHEMA,
        orient="row",
    )  # fmt: skip

    async def write() -> None:
        sink = SqliteSink(str(path))
        await sink.open()
        await sink.write_frame(bar)
        await sink.close()

    asyncio.run(write())
    after = read_bars(f"sqlite:///{path}").sort("resolution")
    assert after.height == 2
    assert after.row(1, named=True) == bar.row(0, named=True)
    assert after.row(0, named=True)["incomplete"] is False
