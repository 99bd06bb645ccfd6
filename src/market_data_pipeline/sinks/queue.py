"""The bounded write queue between the bar engine and a sink.

Producers ``put`` bar frames; the queue holds at most ``capacity_rows`` rows (queued plus the
batch being written) and ``put`` waits while it is full, so nothing is ever dropped. One writer
task coalesces queued frames into batches of up to ``batch_rows`` rows, or whatever is queued
once the oldest frame has waited ``batch_interval_s``, and writes them with retries and
exponential backoff, bounded by a number of attempts and by a total time (``retry_for_s``, the
``--write-retry-for`` budget: long enough to ride out a database restart). If the sink stays
down through the budget, the queue fails loudly: ``put`` and ``close`` raise
``SinkUnavailableError`` with the number of bars not stored. Opening the store at ``start`` has
its own, shorter policy (``open_retry``): a store that cannot be reached at all is more likely
a wrong address than a restart, unless the caller asks to wait. Errors no retry can fix are not
retried (``sinks.failures`` sorts them): a ``UsageError`` (a URL or path the store refuses) or
a ``SinkSetupError`` (no such database, a refused login, a read-only store, a table of another
shape) propagates as is from ``start``; a lost run transaction or a write the store refuses
(``SinkRefusedError``) fails the queue at once. ``give_up()`` (a second Ctrl-C) ends the
retrying of a store that is down.

Depth (queued + in flight) is reported to every ``DepthObserver`` after each put, each take and
each completed write; that is what the watermark monitor turns into Core feedback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import polars as pl

from .. import frames, metrics
from ..errors import (
    BadInputError,
    PipelineError,
    SinkError,
    SinkRefusedError,
    SinkTransactionLostError,
    SinkUnavailableError,
    UsageError,
)
from ..flow.watermarks import DepthObserver
from ..lifecycle import Lifecycle
from .base import BarSink

__all__ = [
    "DEFAULT_OPEN_RETRY_FOR_S",
    "DEFAULT_RETRY_FOR_S",
    "DepthObserver",
    "RetryPolicy",
    "WriteQueue",
    "WriteReport",
]

log = logging.getLogger(__name__)


DEFAULT_RETRY_FOR_S = 60.0  # a PostgreSQL restart or a failover takes seconds to tens of them
# Opening at start: a few quick tries ride out a store that is just starting; a wrong port or
# host then fails in seconds rather than after the whole write budget.
DEFAULT_OPEN_RETRY_FOR_S = 3.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How long to keep trying one write: at most ``attempts`` tries (the first included; None
    for no limit) and no retry starting later than ``retry_for_s`` after the first failure
    (None for no limit), with exponential backoff between tries."""

    attempts: int | None = 5
    initial_backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    multiplier: float = 2.0
    retry_for_s: float | None = None

    def __post_init__(self) -> None:
        if self.attempts is not None and self.attempts < 1:
            raise UsageError(f"retry attempts must be at least 1, not {self.attempts}")
        if self.initial_backoff_s < 0 or self.max_backoff_s < 0 or self.multiplier < 1:
            raise UsageError("retry backoffs must be >= 0 and the multiplier >= 1")
        if self.retry_for_s is not None and self.retry_for_s < 0:
            raise UsageError(f"the retry budget must be >= 0 s, not {self.retry_for_s}")
        if self.attempts is None and self.retry_for_s is None:
            raise UsageError("a retry policy needs a number of attempts or a time budget")

    def delays(self) -> Iterator[float]:
        """Yield the wait before each retry while attempts and time last; the clock starts now."""
        started = time.monotonic()
        delay, waited, tries = self.initial_backoff_s, 0.0, 1
        while self.attempts is None or tries < self.attempts:
            wait = min(delay, self.max_backoff_s)
            # The waits alone count too: the budget holds even if the caller never sleeps.
            spent = max(time.monotonic() - started, waited)
            if self.retry_for_s is not None and spent + wait > self.retry_for_s:
                return
            yield wait
            waited += wait
            tries += 1
            delay *= self.multiplier

    def left(self, tries: int, started: float) -> str:
        """Say what is left after ``tries`` tries begun at ``started`` (monotonic seconds)."""
        parts = []
        if self.attempts is not None:
            parts.append(f"{self.attempts - tries} attempts left")
        if self.retry_for_s is not None:
            remaining = max(0.0, self.retry_for_s - (time.monotonic() - started))
            parts.append(f"{remaining:.0f} s of the retry budget left")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class WriteReport:
    """What a queue did: ``bars_written`` are stored for good (committed), the rest unwritten."""

    bars_written: int
    bars_unwritten: int
    batches: int
    write_errors: int
    retries: int
    seconds_writing: float
    max_depth: int
    committed: bool


class WriteQueue:
    """A row-bounded, blocking queue with one writer task in front of a ``BarSink``.

    ``batch_rows`` above ``capacity_rows`` is lowered to it (a batch can never be bigger).
    ``open_retry`` governs opening the store at ``start`` (default: ``retry``).
    """

    def __init__(
        self,
        sink: BarSink,
        *,
        capacity_rows: int,
        batch_rows: int,
        batch_interval_s: float,
        retry: RetryPolicy,
        observers: Sequence[DepthObserver] = (),
        open_retry: RetryPolicy | None = None,
    ) -> None:
        if capacity_rows < 1 or batch_rows < 1 or batch_interval_s < 0:
            raise UsageError(
                "write queue needs capacity_rows >= 1, batch_rows >= 1 and batch_interval_s >= 0"
            )
        self._sink = sink
        self._capacity = capacity_rows
        self._batch_rows = min(batch_rows, capacity_rows)
        self._interval_s = batch_interval_s
        self._retry = retry
        self._open_retry = open_retry or retry
        self._observers = tuple(observers)
        self._cond = asyncio.Condition()
        self._pending: deque[tuple[float, pl.DataFrame]] = deque()
        self._queued = 0
        self._inflight = 0
        self._refused = 0  # rows offered to put() after a failure or close
        self._blocked = 0  # producers waiting for room
        self._written = 0
        self._batches = 0
        self._write_errors = 0
        self._retries = 0
        self._seconds_writing = 0.0
        self._max_depth = 0
        self.state = Lifecycle.CREATED
        # The write that failed for good: a UsageError is raised as it is, any other as a
        # SinkUnavailableError counting the bars left unwritten (``_unavailable``).
        self._failure: PipelineError | None = None
        self._writer: asyncio.Task[None] | None = None
        self._give_up = asyncio.Event()  # set: a store that is down is not retried any more
        self.report: WriteReport | None = None

    # -- state -------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        """Rows held: queued plus the batch being written."""
        return self._queued + self._inflight

    @property
    def capacity(self) -> int:
        """The most rows the queue holds before ``put`` waits."""
        return self._capacity

    @property
    def bars_written(self) -> int:
        """Bars the sink has accepted so far (committed at ``close`` for transactional sinks)."""
        return self._written

    def _closing(self) -> bool:
        return self.state in (Lifecycle.CLOSING, Lifecycle.CLOSED)

    def _unwritten(self) -> int:
        return self._queued + self._inflight + self._refused

    def _observe(self) -> None:
        depth = self.depth
        self._max_depth = max(self._max_depth, depth)
        for observer in self._observers:
            observer.observe(depth, self._capacity)

    def _unavailable(self, unwritten: int) -> SinkUnavailableError | UsageError:
        failure = self._failure
        if isinstance(failure, UsageError):
            return failure
        error = SinkUnavailableError(str(failure), unwritten=unwritten)
        error.__cause__ = failure.__cause__ if failure is not None else None
        return error

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the sink (retrying per the policy) and start the writer task."""
        if self.state is not Lifecycle.CREATED:
            return
        await self._open_sink()
        self.state = Lifecycle.RUNNING
        self._writer = asyncio.create_task(self._run_writer(), name="mdp-write-queue")

    def give_up(self) -> None:
        """Stop retrying a store that is down: the write being retried fails now."""
        self._give_up.set()

    async def _pause(self, seconds: float) -> bool:
        """Wait ``seconds`` before a retry; False if ``give_up()`` came meanwhile."""
        try:
            async with asyncio.timeout(seconds):
                await self._give_up.wait()
        except TimeoutError:
            return True
        return False

    async def _open_sink(self) -> None:
        delays = self._open_retry.delays()
        started, tries = time.monotonic(), 0
        while True:
            tries += 1
            try:
                await self._sink.open()
                return
            except (UsageError, SinkRefusedError):
                await self._sink.close(commit=False)
                raise
            except SinkError as exc:
                delay = next(delays, None)
                if delay is None or self._give_up.is_set():
                    await self._sink.close(commit=False)
                    if isinstance(exc, SinkUnavailableError):
                        raise
                    raise SinkUnavailableError(str(exc)) from None
                left = self._open_retry.left(tries, started)
                log.warning("%s; retrying in %.2f s, %s", exc, delay, left)
                if not await self._pause(delay):
                    await self._sink.close(commit=False)
                    raise SinkUnavailableError(f"{exc} (gave up retrying)") from None

    async def put(self, bars: pl.DataFrame) -> None:
        """Queue a bar frame, waiting while the queue is full.

        Raise ``SinkUnavailableError`` if the sink stayed down (its ``unwritten`` counts every
        bar offered so far and not stored), ``SinkError`` if the queue is not running.
        """
        if self.state is Lifecycle.CREATED:
            raise SinkError("write queue is not started")
        bars = _conform(bars)
        for offset in range(0, bars.height, self._capacity):
            chunk = bars.slice(offset, self._capacity)
            await self._put_chunk(chunk, rest=bars.height - offset)

    def _has_room(self, rows: int) -> bool:
        return self._failure is not None or self._closing() or self.depth + rows <= self._capacity

    async def _put_chunk(self, chunk: pl.DataFrame, *, rest: int) -> None:
        async with self._cond:
            if not self._has_room(chunk.height):
                # A waiting producer makes the writer flush now rather than at the interval.
                self._blocked += 1
                self._cond.notify_all()
                try:
                    await self._cond.wait_for(lambda: self._has_room(chunk.height))
                finally:
                    self._blocked -= 1
            if self._failure is not None or self._closing():
                self._refused += rest
                if self._failure is not None:
                    raise self._unavailable(self._unwritten())
                raise SinkError(f"write queue is closed; {rest} bars were not queued")
            self._pending.append((asyncio.get_running_loop().time(), chunk))
            self._queued += chunk.height
            self._cond.notify_all()
        self._observe()

    async def drain(self) -> None:
        """Wait until every queued bar is written (a checkpoint commits only behind them).

        Raise ``SinkUnavailableError`` if the sink stayed down meanwhile.
        """
        async with self._cond:
            self._blocked += 1  # like a waiting producer: the writer flushes now
            self._cond.notify_all()
            try:
                await self._cond.wait_for(lambda: self.depth == 0 or self._failure is not None)
            finally:
                self._blocked -= 1
        if self._failure is not None:
            raise self._unavailable(self._unwritten())

    async def close(self, commit: bool = True) -> WriteReport:
        """Write everything queued, close the sink (commit or roll back) and return the report.

        ``commit=False`` abandons what is still queued and rolls back a transactional sink.
        Raise ``SinkUnavailableError`` if the sink stayed down; ``self.report`` still holds the
        report then.
        """
        if self.report is not None:
            return self.report
        async with self._cond:
            self.state = Lifecycle.CLOSING
            self._cond.notify_all()
        if self._writer is not None:
            if not commit:
                # Stop at once. A write already running on the sink's thread finishes there
                # before the rollback; for a streaming sink it may have committed, so the
                # report's unwritten count is an upper bound in that one case.
                self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
        committed = commit and self._failure is None
        try:
            await self._sink.close(commit=committed)
        except SinkError as exc:
            self._failure = self._failure or _failed(f"closing {self._sink.describe()} failed", exc)
            committed = False
        return self._finish(committed)

    def _finish(self, committed: bool) -> WriteReport:
        # A transactional sink that did not commit stored nothing.
        lost = 0 if committed or not self._sink.transactional else self._written
        lost -= min(lost, self._sink.rows_committed)  # checkpoints committed these for good
        self.state = Lifecycle.CLOSED
        self.report = WriteReport(
            bars_written=self._written - lost,
            bars_unwritten=self._unwritten() + lost,
            batches=self._batches,
            write_errors=self._write_errors,
            retries=self._retries,
            seconds_writing=self._seconds_writing,
            max_depth=self._max_depth,
            committed=committed,
        )
        if self._failure is not None:
            raise self._unavailable(self.report.bars_unwritten)
        return self.report

    # -- the writer task -----------------------------------------------------------------------
    async def _run_writer(self) -> None:
        while self._failure is None:
            batch = await self._take()
            if batch is None:
                return
            await self._write(batch)

    async def _take(self) -> pl.DataFrame | None:
        async with self._cond:
            await self._cond.wait_for(lambda: self._queued > 0 or self._closing())
            if self._queued == 0:
                return None
            if not self._flush_now():
                await self._wait_for_batch()
            batch = self._pop_batch()
            self._queued -= batch.height
            self._inflight = batch.height
        self._observe()
        return batch

    def _flush_now(self) -> bool:
        return self._queued >= self._batch_rows or self._closing() or self._blocked > 0

    async def _wait_for_batch(self) -> None:
        # Sleep until a full batch is queued, the queue closes, or the oldest frame is due.
        due = self._pending[0][0] + self._interval_s
        try:
            async with asyncio.timeout_at(due):
                await self._cond.wait_for(self._flush_now)
        except TimeoutError:
            pass

    def _pop_batch(self) -> pl.DataFrame:
        parts: list[pl.DataFrame] = []
        rows = 0
        while self._pending and rows < self._batch_rows:
            arrived, frame = self._pending.popleft()
            room = self._batch_rows - rows
            if frame.height > room:
                self._pending.appendleft((arrived, frame.slice(room)))
                frame = frame.slice(0, room)
            parts.append(frame)
            rows += frame.height
        return parts[0] if len(parts) == 1 else pl.concat(parts, how="vertical", rechunk=True)

    async def _write(self, batch: pl.DataFrame) -> None:
        error: PipelineError | None
        try:
            error = await self._write_with_retry(batch)
        except UsageError as exc:
            error = exc
        async with self._cond:
            if error is None:
                self._inflight = 0
                self._written += batch.height
                self._batches += 1
                metrics.BARS_WRITTEN.inc(batch.height)
            else:
                self._failure = error
            self._cond.notify_all()
        self._observe()

    async def _write_with_retry(self, batch: pl.DataFrame) -> PipelineError | None:
        delays = self._retry.delays()
        where = self._sink.describe()
        first_try, tries = time.monotonic(), 0
        while True:
            tries += 1
            started = time.perf_counter()
            try:
                await self._sink.write_frame(batch)
                return None
            except UsageError:
                self._write_errors += 1
                raise
            except (SinkTransactionLostError, SinkRefusedError) as exc:
                self._write_errors += 1
                return _failed(f"writing to {where} failed", exc)
            except SinkError as exc:
                self._write_errors += 1
                delay = next(delays, None)
                if delay is None or self._give_up.is_set():
                    spent = time.monotonic() - first_try
                    return _failed(
                        f"{where} stayed down after {tries} attempts in {spent:.1f} s", exc
                    )
                log.warning(
                    "writing %d bars to %s failed: %s; retrying in %.2f s, %s",
                    batch.height,
                    where,
                    exc,
                    delay,
                    self._retry.left(tries, first_try),
                )
            except Exception as exc:  # a bug, not an outage: fail loudly, do not retry
                self._write_errors += 1
                log.exception("writing %d bars to %s failed", batch.height, where)
                return _failed(f"writing to {where} failed: {type(exc).__name__}", exc)
            finally:
                self._seconds_writing += time.perf_counter() - started
            self._retries += 1
            if not await self._pause(delay):
                return SinkUnavailableError(
                    f"{where} is down and retrying was given up after {tries} attempts"
                )


def _failed(what: str, cause: Exception) -> SinkUnavailableError:
    """Return the failure ``what`` (its message ending with the cause's), ``cause`` kept."""
    error = SinkUnavailableError(f"{what}: {cause}")
    error.__cause__ = cause
    return error


def _conform(bars: pl.DataFrame) -> pl.DataFrame:
    """Return ``bars`` with exactly the ``BAR_SCHEMA`` columns, in order and type; no NaN vwap."""
    schema = frames.BAR_SCHEMA
    if "revision" in bars.columns:  # bars of a run with allowed lateness
        schema = {**schema, "revision": pl.Int64()}
    try:
        bars = frames.conform(bars, schema, what="bar")
    except BadInputError as exc:  # the engine builds these frames: a bad one is a bug here
        raise SinkError(str(exc)) from None
    if bars["vwap"].is_nan().any():
        # No volume, no vwap: null in every store (SQLite turned NaN into NULL, PostgreSQL not).
        bars = bars.with_columns(pl.col("vwap").fill_nan(None))
    return bars
