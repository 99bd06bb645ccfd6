"""Both sinks against real stores: schema, upserts, duplicates, transactions, timestamps."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime

import hypothesis.strategies as st
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings

from market_data_pipeline import frames
from market_data_pipeline.defaults import TABLE_COLUMNS
from market_data_pipeline.errors import SinkError, SinkSetupError
from market_data_pipeline.sinks import RetryPolicy, WriteQueue, open_sink, read_bars

T0 = 1_704_187_800_000_000_000  # 2024-01-02T09:30:00Z


def bars(n: int, *, start: int = 0, price: float = 1.5, symbol: str = "AAPL") -> pl.DataFrame:
    idx = range(start, start + n)
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "resolution": ["1m"] * n,
            "ts_ns": [T0 + i * 60_000_000_000 for i in idx],
            "open": [price] * n,
            "high": [price + 1] * n,
            "low": [price - 1] * n,
            "close": [price + 0.25] * n,
            "volume": [float(i) for i in idx],
            "vwap": [None if i % 3 == 0 else price + 0.1 for i in idx],
            "trades": [None if i % 4 == 0 else i for i in idx],
            "end_ts_ns": [None if i % 2 else T0 + i * 60_000_000_000 + 7_000 for i in idx],
            "incomplete": [i % 5 == 0 for i in idx],
        },
        schema=frames.BAR_SCHEMA,
    )


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("symbol", "resolution", "ts_ns")


async def write(url: str, *frames_: pl.DataFrame, transactional: bool = False) -> None:
    sink = open_sink(url, transactional=transactional)
    await sink.open()
    for frame in frames_:
        await sink.write_frame(frame)
    await sink.close()


async def test_schema_is_created_and_bars_round_trip(sink_url: str) -> None:
    with pytest.raises(SinkSetupError, match=r"no database file|no table bars"):
        read_bars(sink_url)  # nothing there yet: an error, not an empty answer
    await write(sink_url)
    assert read_bars(sink_url).is_empty()
    await write(sink_url, bars(50))
    assert read_bars(sink_url).equals(canonical(bars(50)))


async def test_the_table_has_the_documented_columns_in_order(sink_url: str) -> None:
    await write(sink_url, bars(1))
    if sink_url.startswith("sqlite"):
        with sqlite3.connect(sink_url.removeprefix("sqlite:///")) as conn:
            names = [row[1] for row in conn.execute("PRAGMA table_info(bars)")]
    else:
        import psycopg

        with psycopg.connect(sink_url) as conn:
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT column_name FROM information_schema.columns"
                    " WHERE table_name = 'bars' AND table_schema = current_schema()"
                    " ORDER BY ordinal_position"
                )
            ]
    assert tuple(names) == (*TABLE_COLUMNS, "revision")  # revision: added later, default 0


async def test_writing_the_same_bars_twice_leaves_the_table_identical(sink_url: str) -> None:
    await write(sink_url, bars(30), bars(10, start=25))
    first = read_bars(sink_url)
    await write(sink_url, bars(30), bars(10, start=25))
    assert read_bars(sink_url).equals(first)
    assert first.height == 35


async def test_upsert_replaces_values_of_an_existing_bar(sink_url: str) -> None:
    await write(sink_url, bars(5, price=1.0))
    await write(sink_url, bars(2, start=3, price=9.0))
    expected = pl.concat([bars(3, price=1.0), bars(2, start=3, price=9.0)])
    assert read_bars(sink_url).equals(canonical(expected))


async def test_a_batch_of_new_and_existing_bars_upserts_both(sink_url: str) -> None:
    await write(sink_url, bars(5, price=1.0))
    await write(sink_url, bars(6, start=3, price=2.0), bars(2, start=20, price=3.0))
    expected = pl.concat(
        [bars(3, price=1.0), bars(6, start=3, price=2.0), bars(2, start=20, price=3.0)]
    )
    assert read_bars(sink_url).equals(canonical(expected))


async def test_a_key_repeated_inside_one_batch_keeps_the_last_row(sink_url: str) -> None:
    batch = pl.concat([bars(4, price=1.0), bars(2, start=1, price=7.0), bars(1, price=3.0)])
    await write(sink_url, batch)
    expected = pl.concat(
        [
            bars(1, price=3.0),
            bars(1, start=1, price=7.0),
            bars(1, start=2, price=7.0),
            bars(1, start=3, price=1.0),
        ]
    )
    assert read_bars(sink_url).equals(canonical(expected))


async def test_transactional_sink_commits_only_at_close(sink_url: str) -> None:
    sink = open_sink(sink_url, transactional=True)
    await sink.open()
    await sink.write_frame(bars(10))
    assert read_bars(sink_url).is_empty()
    await sink.close(commit=True)
    assert read_bars(sink_url).equals(canonical(bars(10)))


async def test_transactional_rollback_leaves_nothing(sink_url: str) -> None:
    await write(sink_url, bars(3, symbol="KEEP"))
    sink = open_sink(sink_url, transactional=True)
    await sink.open()
    await sink.write_frame(bars(10))
    await sink.write_frame(bars(3, symbol="KEEP", price=50.0))
    await sink.close(commit=False)
    assert read_bars(sink_url).equals(canonical(bars(3, symbol="KEEP")))


async def test_a_failed_write_is_all_or_nothing_and_the_run_goes_on(sink_url: str) -> None:
    bad = pl.concat([bars(2, start=100), bars(1, start=102).with_columns(symbol=pl.lit(None))])
    for transactional in (False, True):
        sink = open_sink(sink_url, transactional=transactional)
        await sink.open()
        await sink.write_frame(bars(2))
        with pytest.raises(SinkError):
            await sink.write_frame(bad)
        await sink.write_frame(bars(2, start=2))
        await sink.close(commit=True)
        assert read_bars(sink_url).equals(canonical(bars(4)))


async def test_timestamps_are_stored_as_utc(sink_url: str) -> None:
    frame = bars(1).with_columns(ts_ns=pl.lit(T0 + 123_456_000, dtype=pl.Int64))
    await write(sink_url, frame)
    stored = stored_timestamps(sink_url)
    assert stored == ["2024-01-02T09:30:00.123456Z"]
    assert read_bars(sink_url)["ts_ns"].to_list() == [T0 + 123_456_000]


def stored_timestamps(url: str) -> list[str]:
    """Read ``ts`` straight from the store, rendered in UTC by the database itself."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return [row[0] for row in conn.execute("SELECT ts FROM bars")]
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("SET TIME ZONE 'America/New_York'")
        rows = conn.execute(
            """SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                      ts FROM bars"""
        ).fetchall()
    assert rows[0][1] == datetime(2024, 1, 2, 9, 30, 0, 123456, tzinfo=UTC)
    return [row[0] for row in rows]


async def test_the_write_queue_stores_every_bar(sink_url: str) -> None:
    queue = WriteQueue(
        open_sink(sink_url, transactional=True),
        capacity_rows=64,
        batch_rows=25,
        batch_interval_s=0.01,
        retry=RetryPolicy(attempts=2, initial_backoff_s=0.0),
    )
    await queue.start()
    for k in range(10):
        await queue.put(bars(17, start=17 * k))
    report = await queue.close()
    assert (report.bars_written, report.bars_unwritten, report.committed) == (170, 0, True)
    assert read_bars(sink_url).equals(canonical(bars(170)))


finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
bar_rows = st.lists(
    st.tuples(
        st.sampled_from(["A", "B,C", 'q"t', "é", ""]),
        st.sampled_from(["1s", "1m"]),
        st.integers(min_value=0, max_value=4_000_000_000_000),  # window start, milliseconds
        finite,
        finite,
        st.one_of(st.none(), finite),
        st.one_of(st.none(), st.integers(0, 2**62)),
    ),
    max_size=30,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=bar_rows)
def test_any_bars_round_trip_exactly_with_the_last_row_winning(
    sink_url: str, rows: list[tuple[str, str, int, float, float, float | None, int | None]]
) -> None:
    frame = pl.DataFrame(
        [
            (sym, res, ms * 1_000_000, px, px, px, px, vol, vwap, trades, None, False)
            for sym, res, ms, px, vol, vwap, trades in rows
        ],
        schema=frames.BAR_SCHEMA,
        orient="row",
    )
    asyncio.run(write(sink_url, frame))
    try:
        reference = {(r[0], r[1], r[2]): r for r in frame.iter_rows()}  # last row per key wins
        expected = pl.DataFrame(list(reference.values()), schema=frames.BAR_SCHEMA, orient="row")
        assert read_bars(sink_url).equals(canonical(expected))
    finally:
        clear(sink_url)


def clear(url: str) -> None:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            conn.execute("DELETE FROM bars")
        return
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("DELETE FROM bars")
