"""An existing table is checked against the column spec at start; ``--table`` picks the table.

A table of another shape fails the run at once (exit 2, nothing written); a column added in a
later version is added in place with its default; a value the store can never hold fails the
write at once instead of being retried for the whole budget.
"""

from __future__ import annotations

import random
import sqlite3
import string
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest

from market_data_pipeline import frames
from market_data_pipeline.config import RunSettings
from market_data_pipeline.errors import SinkError, SinkRefusedError, SinkSetupError
from market_data_pipeline.runtime import execute
from market_data_pipeline.sinks import RetryPolicy, WriteQueue, open_sink, read_bars, schema
from market_data_pipeline.sinks.schema import Column

T0 = 1_704_187_800_000_000_000  # 2024-01-02T09:30:00Z


def bars(n: int, *, start: int = 0, symbol: str = "AAPL") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "resolution": ["1m"] * n,
            "ts_ns": [T0 + i * 60_000_000_000 for i in range(start, start + n)],
            **{name: [1.5] * n for name in ("open", "high", "low", "close", "volume", "vwap")},
            "trades": [1] * n,
            "end_ts_ns": [None] * n,
            "incomplete": [False] * n,
        },
        schema=frames.BAR_SCHEMA,
    )


Sql = Callable[[str], list[tuple[object, ...]]]
# Seconds: a retry budget long enough to hang the test: these errors must not be retried.
SLOW = 3_600.0


@pytest.fixture
def sql(sink_url: str) -> Iterator[Sql]:
    """Run one statement on the test store and return its rows (autocommit)."""
    if sink_url.startswith("sqlite"):
        conn = sqlite3.connect(sink_url.removeprefix("sqlite:///"), isolation_level=None)

        def run_sqlite(statement: str) -> list[tuple[object, ...]]:
            return list(conn.execute(statement).fetchall())

        yield run_sqlite
        conn.close()
        return
    import psycopg

    with psycopg.connect(sink_url, autocommit=True) as pg:

        def run_pg(statement: str) -> list[tuple[object, ...]]:
            cur = pg.execute(statement)
            return list(cur.fetchall()) if cur.description else []

        yield run_pg


def _columns(sql: Sql, sink_url: str, table: str = "bars") -> list[str]:
    if sink_url.startswith("sqlite"):
        return [str(row[1]) for row in sql(f"PRAGMA table_info({table})")]
    return [
        str(row[0])
        for row in sql(
            "SELECT column_name FROM information_schema.columns WHERE table_name = "
            f"'{table}' AND table_schema = current_schema() ORDER BY ordinal_position"
        )
    ]


async def test_a_table_of_another_shape_fails_the_run_at_once(sink_url: str, sql: Sql) -> None:
    sql("CREATE TABLE bars (id integer PRIMARY KEY, name text)")
    report = await execute(RunSettings(ticks=500, sink=sink_url, write_retry_for_s=SLOW))
    assert report.exit_code == 2 and report.status == "bad_input"
    assert report.error is not None and "\n" not in report.error
    assert "table bars in" in report.error
    assert "no column symbol, resolution, ts, open" in report.error
    assert "no primary key or unique index on (symbol, resolution, ts)" in report.error
    assert report.write is None or report.write.retries == 0
    assert _columns(sql, sink_url) == ["id", "name"]  # untouched
    assert sql("SELECT count(*) FROM bars") == [(0,)]


@pytest.mark.parametrize(
    ("sqlite_ddl", "pg_ddl", "said"),
    [
        (
            "ts INTEGER NOT NULL",
            "ts timestamp NOT NULL",
            {"sqlite": "column ts is INTEGER, expected TEXT", "postgresql": "column ts is"},
        ),
        (
            "ts TEXT NOT NULL, account TEXT NOT NULL",
            "ts timestamptz NOT NULL, account text NOT NULL",
            {"sqlite": "column account is NOT NULL without a default"},
        ),
    ],
)
async def test_a_mistyped_or_unfillable_column_is_named(
    sink_url: str, sql: Sql, sqlite_ddl: str, pg_ddl: str, said: dict[str, str]
) -> None:
    sqlite = sink_url.startswith("sqlite")
    real, text = ("REAL", "TEXT") if sqlite else ("double precision", "text")
    prices = ", ".join(f"{name} {real} NOT NULL" for name in ("open", "high", "low", "close"))
    sql(
        f"CREATE TABLE bars (symbol {text} NOT NULL, resolution {text} NOT NULL,"
        f" {sqlite_ddl if sqlite else pg_ddl}, {prices}, volume {real} NOT NULL, vwap {real},"
        " trades bigint, PRIMARY KEY (symbol, resolution, ts))"
    )
    sink = open_sink(sink_url)
    with pytest.raises(SinkSetupError) as error:
        await sink.open()
    await sink.close()
    expected = said.get("sqlite" if sqlite else "postgresql", said["sqlite"])
    assert expected in str(error.value)
    assert error.value.exit_code == 2


async def test_a_later_column_is_added_in_place_with_its_default(
    sink_url: str, sql: Sql, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = open_sink(sink_url)
    await sink.open()
    await sink.write_frame(bars(3))
    await sink.close()
    # A column no version has yet (the spec's own later columns are in every new table).
    later = Column("later", "INTEGER", "bigint", default="0")
    monkeypatch.setattr(schema, "COLUMNS", (*schema.COLUMNS, later))
    sink = open_sink(sink_url)
    await sink.open()  # an older table: migrated, not refused
    await sink.write_frame(bars(2, start=3))
    await sink.close()
    assert _columns(sql, sink_url)[-1] == "later"
    assert sql("SELECT count(*), min(later), max(later) FROM bars") == [(5, 0, 0)]
    assert read_bars(sink_url).height == 5


async def test_bars_go_to_the_table_named_and_only_there(sink_url: str, sql: Sql) -> None:
    report = await execute(RunSettings(ticks=300, resolution="1m", sink=sink_url, table="es"))
    assert report.exit_code == 0 and report.bars_written > 0 and report.table == "es"
    assert read_bars(sink_url, table="es").height == report.bars_written
    assert _columns(sql, sink_url, "bars") == []  # the default table was never created
    with pytest.raises(SinkSetupError, match="no table bars in"):
        read_bars(sink_url)


@pytest.mark.postgres
async def test_a_postgres_schema_dot_table(postgres_url: str) -> None:
    import psycopg

    schema_name = f"mdp_market_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema_name}"')
    try:
        where = f"{schema_name}.bars_es"
        report = await execute(RunSettings(ticks=300, sink=postgres_url, table=where))
        assert report.exit_code == 0 and report.bars_written > 0
        assert read_bars(postgres_url, table=where).height == report.bars_written
        missing = await execute(RunSettings(ticks=300, sink=postgres_url, table="nope.bars"))
        assert missing.exit_code == 2
        assert missing.error is not None and 'schema "nope" does not exist' in missing.error
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema_name}" CASCADE')


@pytest.mark.postgres
async def test_a_value_postgres_cannot_index_fails_the_write_at_once(postgres_url: str) -> None:
    # A symbol past the index row limit (the edge refuses such rows; a frame written directly
    # is not checked there). Random text: a repeated letter would compress below the limit.
    rng = random.Random(1)
    symbol = "".join(rng.choice(string.ascii_letters) for _ in range(10_000))
    queue = WriteQueue(
        open_sink(postgres_url),
        capacity_rows=100,
        batch_rows=100,
        batch_interval_s=0.0,
        retry=RetryPolicy(attempts=None, initial_backoff_s=60.0, retry_for_s=3600.0),
    )
    await queue.start()
    await queue.put(bars(1, symbol=symbol))
    with pytest.raises(SinkError) as error:
        await queue.close()
    assert "index row" in str(error.value) and "\n" not in str(error.value)
    assert queue.report is not None and queue.report.retries == 0
    assert queue.report.bars_unwritten == 1


def test_a_read_of_a_table_with_other_columns_is_one_error(sink_url: str, sql: Sql) -> None:
    sql("CREATE TABLE bars (id integer PRIMARY KEY, name text)")
    with pytest.raises(SinkSetupError) as error:
        read_bars(sink_url)
    assert "\n" not in str(error.value)


def test_a_sqlite_ts_that_is_not_a_stored_time_is_named(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with sqlite3.connect(db) as conn:
        conn.execute(schema.BarTable().create_sql("sqlite"))
        conn.execute(
            "INSERT INTO bars (symbol, resolution, ts, open, high, low, close, volume)"
            " VALUES ('A', '1m', '2024-01-01', 1, 1, 1, 1, 1)"
        )
    with pytest.raises(SinkSetupError, match="ts '2024-01-01' \\(A 1m\\) is not a stored time"):
        read_bars(f"sqlite:///{db}")


def test_sqlite_refusals_are_permanent_and_busy_is_not() -> None:
    from market_data_pipeline.sinks.failures import sqlite_errors

    def raised(exc: sqlite3.Error) -> type[Exception]:
        with pytest.raises(Exception) as info, sqlite_errors("x.db", "write"):
            raise exc
        return type(info.value)

    busy = sqlite3.OperationalError("database is locked")
    busy.sqlite_errorname = "SQLITE_BUSY"
    readonly = sqlite3.OperationalError("attempt to write a readonly database")
    readonly.sqlite_errorname = "SQLITE_READONLY_DBMOVED"
    assert raised(busy) is SinkError
    assert raised(readonly) is SinkRefusedError
