"""Write-queue faults found under attack: counts that agree, a retry budget, final refusals."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_queue import MemorySink, bars, queue

from market_data_pipeline.config import RunSettings
from market_data_pipeline.errors import SinkRefusedError, SinkUnavailableError
from market_data_pipeline.runtime import execute
from market_data_pipeline.sinks.queue import RetryPolicy


class DiesAfter(MemorySink):
    """A store that takes ``good`` writes, then is down for good."""

    def __init__(self, good: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.good = good

    def _upsert_sync(self, frame: pl.DataFrame) -> None:
        if self.good <= 0:
            self.write_calls += 1
            raise self.error
        self.good -= 1
        super()._upsert_sync(frame)


@pytest.mark.parametrize("good", [0, 1, 3])
async def test_the_error_and_the_summary_count_the_same_unwritten_bars(good: int) -> None:
    """The error said 100 while the summary said 180: both now state the final count."""
    settings = RunSettings(
        ticks=40_000,
        symbols=("A", "B", "C", "D"),
        resolution="1s,1m",
        batch_rows=50,
        queue_capacity=200,
        write_attempts=1,
    )
    report = await execute(settings, sink=DiesAfter(good))
    assert report.exit_code == 1
    assert report.error is not None
    assert f"({report.bars_unwritten} bars not written)" in report.error
    assert report.bars_built == report.bars_written + report.bars_unwritten
    assert report.bars_unwritten > 0


@settings(deadline=None)
@given(
    budget_s=st.floats(0, 600),
    initial=st.floats(0.05, 10),
    multiplier=st.floats(1, 4),
)
def test_retry_waits_never_exceed_the_budget(
    budget_s: float, initial: float, multiplier: float
) -> None:
    policy = RetryPolicy(
        attempts=None, retry_for_s=budget_s, initial_backoff_s=initial, multiplier=multiplier
    )
    waits = list(policy.delays())
    assert sum(waits) <= budget_s + 1e-9
    assert all(w <= policy.max_backoff_s for w in waits)


def test_a_budget_alone_or_attempts_alone_bounds_the_retries() -> None:
    assert len(list(RetryPolicy(attempts=4, initial_backoff_s=0.0).delays())) == 3
    with pytest.raises(Exception, match="attempts or a time budget"):
        RetryPolicy(attempts=None, retry_for_s=None)


async def test_a_refusing_store_fails_at_once_without_retries() -> None:
    sink = MemorySink(
        failures=10**6, error=SinkRefusedError("attempt to write a readonly database")
    )
    q = queue(sink, retry=RetryPolicy(attempts=None, retry_for_s=3600, initial_backoff_s=60))
    await q.start()
    await q.put(bars(10))
    with pytest.raises(SinkUnavailableError, match="readonly") as error:
        await asyncio.wait_for(q.close(), timeout=30)
    assert error.value.unwritten == 10
    assert sink.write_calls == 1


async def test_the_failure_keeps_the_stores_own_error_as_its_cause() -> None:
    refusal = SinkRefusedError("attempt to write a readonly database")
    q = queue(MemorySink(failures=10**6, error=refusal))
    await q.start()
    await q.put(bars(10))
    with pytest.raises(SinkUnavailableError) as error:
        await asyncio.wait_for(q.close(), timeout=30)
    assert error.value.__cause__ is refusal
    assert error.value.reason == f"writing to memory://test failed: {refusal}"


async def test_give_up_ends_the_retrying_of_a_store_that_is_down() -> None:
    sink = MemorySink(failures=10**6)
    q = queue(sink, retry=RetryPolicy(attempts=None, retry_for_s=3600, initial_backoff_s=60))
    await q.start()
    await q.put(bars(10))
    while sink.write_calls == 0:  # noqa: ASYNC110 - the count is set on the sink's thread
        await asyncio.sleep(0.01)
    q.give_up()
    with pytest.raises(SinkUnavailableError) as error:
        await asyncio.wait_for(q.close(), timeout=30)
    assert error.value.unwritten == 10


async def test_a_nan_vwap_reaches_every_store_as_null() -> None:
    sink = MemorySink()
    q = queue(sink)
    await q.start()
    await q.put(bars(3).with_columns(vwap=pl.lit(math.nan)))
    await q.close()
    assert sink.rows()["vwap"].to_list() == [None, None, None]
