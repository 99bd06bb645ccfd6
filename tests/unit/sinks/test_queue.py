"""WriteQueue against in-test sinks: blocking, batching, time flush, retries, failure, observers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import hypothesis.strategies as st
import polars as pl
import pytest
from hypothesis import given, settings

from market_data_pipeline import frames
from market_data_pipeline.errors import (
    SinkError,
    SinkTransactionLostError,
    SinkUnavailableError,
    UsageError,
)
from market_data_pipeline.lifecycle import Lifecycle
from market_data_pipeline.sinks.base import BarSink
from market_data_pipeline.sinks.queue import RetryPolicy, WriteQueue

NO_WAIT = RetryPolicy(attempts=3, initial_backoff_s=0.0, max_backoff_s=0.0)


def bars(n: int, start: int = 0) -> pl.DataFrame:
    """``n`` distinct bars numbered from ``start`` (the number is in ts_ns and volume)."""
    idx = list(range(start, start + n))
    return pl.DataFrame(
        {
            "symbol": ["AAA"] * n,
            "resolution": ["1m"] * n,
            "ts_ns": [i * 60_000_000_000 for i in idx],
            "open": [1.0] * n,
            "high": [2.0] * n,
            "low": [0.5] * n,
            "close": [1.5] * n,
            "volume": [float(i) for i in idx],
            "vwap": [None] * n,
            "trades": [1] * n,
            "end_ts_ns": [None] * n,
            "incomplete": [False] * n,
        },
        schema=frames.BAR_SCHEMA,
    )


class MemorySink(BarSink):
    """Keeps written batches in memory; ``gate`` holds writes, ``failures`` fail the first ones."""

    scheme = "memory"

    def __init__(
        self,
        *,
        failures: int = 0,
        open_failures: int = 0,
        transactional: bool = False,
        error: SinkError | UsageError | None = None,
    ):
        super().__init__(transactional=transactional)
        self.error = error or SinkError("store is down")
        self.write_calls = 0
        self.open_calls = 0
        self.batches: list[pl.DataFrame] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.wrote = asyncio.Event()
        self.failures = failures
        self.open_failures = open_failures
        self.finished: bool | None = None

    def describe(self) -> str:
        return "memory://test"

    def _open_sync(self) -> None:
        self.open_calls += 1
        if self.open_failures:
            self.open_failures -= 1
            if isinstance(self.error, UsageError):
                raise self.error
            raise SinkError("store is starting up")

    def _upsert_sync(self, bars: pl.DataFrame) -> None:
        self.write_calls += 1
        if self.failures:
            self.failures -= 1
            raise self.error
        self.batches.append(bars)

    def _finish_sync(self, commit: bool) -> None:
        self.finished = commit

    async def write_frame(self, bars: pl.DataFrame) -> None:
        await self.gate.wait()
        await super().write_frame(bars)
        self.wrote.set()

    def rows(self) -> pl.DataFrame:
        return pl.concat(self.batches) if self.batches else frames.empty_bars()


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def observe(self, depth: int, capacity: int) -> None:
        self.seen.append((depth, capacity))


async def settle(rounds: int = 20) -> None:
    """Let every ready task run (no wall-clock waiting)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def queue(sink: BarSink, **kw: Any) -> WriteQueue:
    args: dict[str, Any] = {
        "capacity_rows": 100,
        "batch_rows": 10,
        "batch_interval_s": 60.0,
        "retry": NO_WAIT,
    }
    args.update(kw)
    return WriteQueue(sink, **args)


async def test_put_blocks_when_full_and_drops_nothing() -> None:
    sink = MemorySink()
    sink.gate.clear()
    q = queue(sink, capacity_rows=10, batch_rows=10)
    await q.start()
    await q.put(bars(10))  # the writer takes it and waits on the gate: depth 10 of 10
    producer = asyncio.create_task(q.put(bars(5, start=10)))
    await settle()
    assert not producer.done()
    assert q.depth == 10
    sink.gate.set()
    await producer
    report = await q.close()
    assert sink.rows().equals(bars(15))
    assert report.bars_written == 15
    assert report.bars_unwritten == 0


async def test_time_based_flush_writes_a_partial_batch_without_close() -> None:
    sink = MemorySink()
    q = queue(sink, batch_rows=1000, capacity_rows=1000, batch_interval_s=0.01)
    await q.start()
    await q.put(bars(3))
    await asyncio.wait_for(sink.wrote.wait(), timeout=10)
    assert sink.rows().equals(bars(3))
    assert q.bars_written == 3
    await q.close()


async def test_close_drains_everything_and_commits() -> None:
    sink = MemorySink(transactional=True)
    q = queue(sink, batch_rows=7)
    await q.start()
    for k in range(6):
        await q.put(bars(5, start=5 * k))
    report = await q.close()
    assert sink.rows().equals(bars(30))
    assert all(batch.height <= 7 for batch in sink.batches)
    assert sink.finished is True
    assert report.committed and report.bars_written == 30


async def test_retry_then_success_logs_attempts_left(caplog: pytest.LogCaptureFixture) -> None:
    sink = MemorySink(failures=2)
    q = queue(sink)
    await q.start()
    with caplog.at_level(logging.WARNING, logger="market_data_pipeline.sinks.queue"):
        await q.put(bars(4))
        report = await q.close()
    assert sink.rows().equals(bars(4))
    assert (report.retries, report.write_errors, report.bars_written) == (2, 2, 4)
    messages = [r.getMessage() for r in caplog.records]
    assert any("retrying in 0.00 s, 2 attempts left" in m for m in messages)
    assert any("1 attempts left" in m for m in messages)


async def test_permanent_failure_raises_with_exact_unwritten_count() -> None:
    sink = MemorySink(failures=10**6)
    q = queue(sink, capacity_rows=5, batch_rows=5)
    await q.start()
    await q.put(bars(5))
    with pytest.raises(SinkUnavailableError) as put_error:
        await q.put(bars(3, start=5))  # waits for room, then learns the sink is gone
    assert put_error.value.unwritten == 8
    assert "memory://test stayed down after 3 attempts" in str(put_error.value)
    with pytest.raises(SinkUnavailableError) as close_error:
        await q.close()
    assert close_error.value.unwritten == 8
    assert q.report is not None
    assert (q.report.bars_written, q.report.bars_unwritten, q.report.committed) == (0, 8, False)
    assert sink.finished is False


async def test_transactional_failure_counts_earlier_writes_as_unwritten() -> None:
    sink = MemorySink(transactional=True)
    q = queue(sink, capacity_rows=5, batch_rows=5)
    await q.start()
    await q.put(bars(5))
    await asyncio.wait_for(sink.wrote.wait(), timeout=10)
    sink.failures = 10**6
    await q.put(bars(2, start=5))
    with pytest.raises(SinkUnavailableError) as error:
        await q.close()
    assert error.value.unwritten == 7  # the 5 written ones were rolled back with the run
    assert sink.finished is False


async def test_observers_see_depth_rise_and_fall() -> None:
    sink = MemorySink()
    sink.gate.clear()
    recorder = Recorder()
    q = queue(sink, capacity_rows=20, batch_rows=20, observers=[recorder])
    await q.start()
    await q.put(bars(6))
    await q.put(bars(6, start=6))
    await settle()
    sink.gate.set()
    await q.close()
    depths = [depth for depth, _ in recorder.seen]
    assert {cap for _, cap in recorder.seen} == {20}
    assert max(depths) == 12
    assert depths[-1] == 0
    assert depths.index(12) < len(depths) - 1


async def test_frame_bigger_than_capacity_is_split_and_depth_stays_bounded() -> None:
    sink = MemorySink()
    recorder = Recorder()
    q = queue(sink, capacity_rows=8, batch_rows=8, observers=[recorder])
    await q.start()
    await q.put(bars(50))
    report = await q.close()
    assert sink.rows().equals(bars(50))
    assert max(depth for depth, _ in recorder.seen) <= 8
    assert report.max_depth <= 8


async def test_close_without_commit_abandons_queue_and_rolls_back() -> None:
    sink = MemorySink(transactional=True)
    sink.gate.clear()
    q = queue(sink, batch_rows=4)
    await q.start()
    await q.put(bars(10))
    await settle()
    report = await q.close(commit=False)
    assert sink.finished is False
    assert report.bars_written == 0
    assert report.bars_unwritten == 10


async def test_start_retries_open_then_fails_loudly() -> None:
    flaky = MemorySink(open_failures=2)
    q = queue(flaky)
    await q.start()
    await q.close()
    down = MemorySink(open_failures=10)
    with pytest.raises(SinkUnavailableError) as error:
        await queue(down).start()
    assert error.value.unwritten is None  # nothing was at stake yet


async def test_put_needs_start_and_refuses_after_close() -> None:
    q = queue(MemorySink())
    with pytest.raises(SinkError, match="not started"):
        await q.put(bars(1))
    await q.start()
    await q.close()
    with pytest.raises(SinkError, match="closed"):
        await q.put(bars(1))


async def test_the_queue_state_moves_forward_and_a_second_close_changes_nothing() -> None:
    q = queue(MemorySink())
    seen = [q.state]
    await q.start()
    seen.append(q.state)
    await q.put(bars(3))
    first = await q.close()
    seen.append(q.state)
    assert seen == [Lifecycle.CREATED, Lifecycle.RUNNING, Lifecycle.CLOSED]
    assert await q.close() is first and first.bars_written == 3


def test_retry_policy_delays_grow_and_cap() -> None:
    policy = RetryPolicy(attempts=5, initial_backoff_s=0.1, max_backoff_s=0.5, multiplier=3)
    assert list(policy.delays()) == pytest.approx([0.1, 0.3, 0.5, 0.5])
    with pytest.raises(UsageError):
        RetryPolicy(attempts=0)


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=30), max_size=12),
    capacity=st.integers(min_value=1, max_value=40),
    batch=st.integers(min_value=1, max_value=50),
)
def test_every_bar_is_written_once_in_order(sizes: list[int], capacity: int, batch: int) -> None:
    async def scenario() -> tuple[MemorySink, int]:
        sink = MemorySink()
        recorder = Recorder()
        q = queue(sink, capacity_rows=capacity, batch_rows=batch, observers=[recorder])
        await q.start()
        start = 0
        for size in sizes:
            await q.put(bars(size, start=start))
            start += size
        report = await q.close()
        assert report.bars_written == start
        assert max((d for d, _ in recorder.seen), default=0) <= capacity
        return sink, start

    sink, total = asyncio.run(scenario())
    assert sink.rows().equals(bars(total))
    assert all(0 < b.height <= min(batch, capacity) for b in sink.batches)


async def test_a_usage_error_on_open_is_not_retried() -> None:
    sink = MemorySink(open_failures=10, error=UsageError("database nodb does not exist"))
    q = queue(sink)
    with pytest.raises(UsageError, match="nodb"):
        await q.start()
    assert sink.open_calls == 1
    assert sink.finished is False


async def test_a_usage_error_on_write_is_not_retried_and_propagates() -> None:
    sink = MemorySink(failures=10, error=UsageError("bad store path"))
    q = queue(sink, capacity_rows=5, batch_rows=5)
    await q.start()
    await q.put(bars(5))
    with pytest.raises(UsageError, match="bad store path"):
        await q.put(bars(3, start=5))
    with pytest.raises(UsageError):
        await q.close()
    assert sink.write_calls == 1
    assert q.report is not None and q.report.bars_unwritten == 8


async def test_a_lost_run_transaction_fails_at_once() -> None:
    sink = MemorySink(
        failures=10, transactional=True, error=SinkTransactionLostError("run transaction lost")
    )
    q = queue(sink, capacity_rows=5, batch_rows=5)
    await q.start()
    await q.put(bars(5))
    with pytest.raises(SinkUnavailableError, match="run transaction lost") as error:
        await q.close()
    assert sink.write_calls == 1
    assert error.value.unwritten == 5


async def test_put_conforms_frames_and_refuses_one_without_bar_columns() -> None:
    sink = MemorySink()
    q = queue(sink)
    await q.start()
    given = bars(2).with_columns(
        pl.col("trades").cast(pl.Int32), pl.lit(float("nan")).alias("vwap"), pl.lit(1).alias("x")
    )
    await q.put(given.select(reversed(given.columns)))
    with pytest.raises(SinkError, match="bar frame lacks column"):
        await q.put(bars(1).drop("vwap"))
    await q.close()
    assert sink.rows().equals(bars(2))  # BAR_SCHEMA order and types, NaN vwap stored as null
