"""Bar write throughput: the PostgreSQL and SQLite sinks against plain executemany baselines.

    .venv/bin/python bench/bench_postgres_writes.py [--rows 1000000] [--url postgresql://...]

For each batch size it writes ``--rows`` new bars ("insert"), then the same bars again
("update": every key exists), and prints rows/s. Columns: ``sink`` is the PostgresSink as
shipped (polars CSV + COPY into a staging table + INSERT ... SELECT); ``binary`` is the same
staging with binary COPY fed by psycopg ``write_row`` per bar (kept for comparison);
``executemany`` is the baseline, psycopg executemany of the upsert; ``ratio`` = sink/baseline.
PostgreSQL runs in private schemas dropped afterwards; SQLite in temporary files, against one
``execute`` per bar as its baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from urllib.parse import quote

import polars as pl
import psycopg

from market_data_pipeline import frames
from market_data_pipeline.defaults import TABLE_COLUMNS
from market_data_pipeline.sinks import open_sink
from market_data_pipeline.sinks.postgres import (
    _STAGE_COLUMNS,
    STAGE_TABLE,
    PostgresSink,
    _Writer,
    merge_sql,
)
from market_data_pipeline.sinks.schema import BarTable
from market_data_pipeline.sinks.sqlite import ts_text, upsert_sql

_MERGE = merge_sql(BarTable())
_UPSERT = upsert_sql(BarTable())

DEFAULT_URL = os.environ.get("MDP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BATCHES = (1_000, 10_000, 100_000)
T0 = 1_704_067_200_000_000_000


def make_bars(rows: int) -> pl.DataFrame:
    """``rows`` distinct 1s bars over 100 symbols, with realistic float values."""
    i = pl.int_range(0, rows, eager=True)
    price = 100.0 + (i % 977).cast(pl.Float64) * 0.013
    return pl.DataFrame(
        {
            "symbol": ("SYM" + (i % 100).cast(pl.String)),
            "resolution": pl.repeat("1s", rows, eager=True),
            "ts_ns": T0 + (i // 100) * 1_000_000_000,
            "open": price,
            "high": price + 0.5,
            "low": price - 0.5,
            "close": price + 0.125,
            "volume": (i % 5000).cast(pl.Float64) + 1.0,
            "vwap": price + 0.01,
            "trades": i % 300,
            "end_ts_ns": pl.repeat(None, rows, dtype=pl.Int64, eager=True),
            "incomplete": pl.repeat(False, rows, eager=True),
        }
    ).cast(pl.Schema(frames.BAR_SCHEMA))


def timed(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def slices(bars: pl.DataFrame, batch: int) -> list[pl.DataFrame]:
    return [bars.slice(o, batch) for o in range(0, bars.height, batch)]


# -- PostgreSQL ------------------------------------------------------------------------------
def sink_run(url: str, parts: list[pl.DataFrame], connections: int = 2) -> float:
    async def run() -> float:
        sink = (
            PostgresSink(url, connections=connections)
            if url.startswith("postgres")
            else open_sink(url)
        )
        await sink.open()
        started = time.perf_counter()
        for part in parts:
            await sink.write_frame(part)
        elapsed = time.perf_counter() - started
        await sink.close()
        return elapsed

    return asyncio.run(run())


def pg_binary_run(url: str, parts: list[pl.DataFrame]) -> float:
    """The same staging + merge, but COPY in binary with one ``write_row`` per bar."""
    writer = _Writer(url, transactional=False, table=BarTable())
    writer.open()
    conn = writer.conn
    assert conn is not None
    types = ["text", "text", "int8", *["float8"] * 6, "int8", "int8", "bool"]

    def write(part: pl.DataFrame) -> None:
        staged = part.with_columns(pl.col("ts_ns") // 1000, pl.col("end_ts_ns") // 1000)
        columns = f"{STAGE_TABLE} ({_STAGE_COLUMNS})"
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(f"TRUNCATE {STAGE_TABLE}")
            with cur.copy(f"COPY {columns} FROM STDIN (FORMAT binary)") as copy:
                copy.set_types(types)
                for row in staged.iter_rows():
                    copy.write_row(row)
            writer._merge(conn, cur)  # same insert-or-upsert step as the sink

    elapsed = sum(timed(partial(write, part)) for part in parts)
    writer.finish(True)
    return elapsed


def pg_executemany_run(url: str, parts: list[pl.DataFrame]) -> float:
    """Baseline: psycopg ``executemany`` of the upsert, one transaction per batch."""
    sql = _MERGE.split("SELECT")[0] + f"VALUES ({', '.join(['%s'] * len(TABLE_COLUMNS))})"
    sql += _MERGE.split(STAGE_TABLE)[1]
    schema_owner = _Writer(url, transactional=False, table=BarTable())  # creates the table
    schema_owner.open()
    schema_owner.finish(True)
    with psycopg.connect(url, autocommit=True) as conn:
        total = 0.0
        for part in parts:

            def write(part: pl.DataFrame = part) -> None:
                times = (
                    pl.col(name).cast(pl.Datetime("ns", "UTC")) for name in ("ts_ns", "end_ts_ns")
                )
                rows = part.with_columns(times).rows()
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(sql, rows)

            total += timed(write)
    return total


def bench_postgres(base_url: str, bars: pl.DataFrame, baseline_rows: int) -> None:
    print(f"PostgreSQL ({bars.height:,} bars; executemany baseline on {baseline_rows:,}), rows/s")
    print(
        f"{'batch':>8} {'pass':>7} {'sink':>10} {'1 conn':>10} {'binary':>10}"
        f" {'executemany':>12} {'ratio':>7}"
    )
    for batch in BATCHES:
        parts = slices(bars, batch)
        base_parts = slices(bars.head(baseline_rows), batch)
        rates: dict[str, list[float]] = {}
        for name, run, data in (
            ("sink", sink_run, parts),
            ("1 conn", lambda u, d: sink_run(u, d, connections=1), parts),
            ("binary", pg_binary_run, parts),
            ("executemany", pg_executemany_run, base_parts),
        ):
            with private_schema(base_url) as url:  # insert pass, then the same rows again
                rows = sum(p.height for p in data)
                rates[name] = [rows / run(url, data), rows / run(url, data)]
        for k, label in enumerate(("insert", "update")):
            ours, one, binary, base = (
                rates[n][k] for n in ("sink", "1 conn", "binary", "executemany")
            )
            print(
                f"{batch:>8,} {label:>7} {ours:>10,.0f} {one:>10,.0f} {binary:>10,.0f}"
                f" {base:>12,.0f}"
                f" {ours / base:>6.1f}x"
            )


@contextmanager
def private_schema(base_url: str) -> Iterator[str]:
    schema = f"mdp_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base_url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in base_url else "?"
    try:
        yield f"{base_url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(base_url, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


# -- SQLite ------------------------------------------------------------------------------------
def sqlite_sink_run(path: Path, parts: list[pl.DataFrame]) -> float:
    return sink_run(f"sqlite:///{path}", parts)  # same loop, the URL picks the backend


def sqlite_row_by_row_run(path: Path, parts: list[pl.DataFrame]) -> float:
    """Baseline: one ``execute`` per bar from ``to_dicts()``, one transaction per batch."""
    conn = sqlite3.connect(path, isolation_level=None)
    total = 0.0
    for part in parts:

        def write(part: pl.DataFrame = part) -> None:
            stored = (
                ts_text(),
                ts_text("end_ts_ns").alias("end_ts"),
                pl.col("incomplete").cast(int),
            )
            dicts = part.with_columns(stored).to_dicts()
            conn.execute("BEGIN")
            for d in dicts:
                conn.execute(_UPSERT, tuple(d[name] for name in TABLE_COLUMNS))
            conn.execute("COMMIT")

        total += timed(write)
    conn.close()
    return total


def bench_sqlite(bars: pl.DataFrame) -> None:
    print(f"\nSQLite ({bars.height:,} bars, WAL), rows/s")
    print(f"{'batch':>8} {'pass':>7} {'sink':>10} {'row by row':>12} {'ratio':>7}")
    for batch in BATCHES:
        parts = slices(bars, batch)
        with tempfile.TemporaryDirectory() as tmp:
            ours, base = Path(tmp, "sink.db"), Path(tmp, "base.db")
            asyncio.run(_create_schema(base))
            for label in ("insert", "update"):
                rate = bars.height / sqlite_sink_run(ours, parts)
                base_rate = bars.height / sqlite_row_by_row_run(base, parts)
                print(
                    f"{batch:>8,} {label:>7} {rate:>10,.0f} {base_rate:>12,.0f}"
                    f" {rate / base_rate:>6.1f}x"
                )


async def _create_schema(path: Path) -> None:
    sink = open_sink(f"sqlite:///{path}")
    await sink.open()
    await sink.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=100_000)
    parser.add_argument("--url", default=DEFAULT_URL)
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args()
    bars = make_bars(args.rows)
    bench_postgres(args.url, bars, min(args.baseline_rows, args.rows))
    if not args.skip_sqlite:
        bench_sqlite(bars)


if __name__ == "__main__":
    main()
