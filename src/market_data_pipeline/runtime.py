"""Run the stages of one run, own their lifecycle and count every tick.

One tick's path (see docs/architecture.md)::

    source.batches() -> RateGate.meter() -> BarEngine.add_ticks() -> WriteQueue.put()
        -> writer task -> BarSink.write_frame()        (commit per batch, or per run for replays)
    WriteQueue depth -> WatermarkMonitor.observe() -> FeedbackEvent -> bus
        -> FeedbackHandler.handle() -> RateAdjustment -> RateGate.apply()

``build_pipeline`` has build.py assemble the stages from settings; ``Pipeline`` receives them
and only runs them: ``async with build_pipeline(settings) as p: report = await p.execute()``.
It is Core's ``PipelineRunner``; its ``state`` (created, running, closing, closed) only moves
forward. Stopping (end of input, ``--duration``, Ctrl-C) never interrupts a write: the ingest
task is cancelled only while it waits on the source or the gate, then every open window is
flushed and written before the sink closes. The ``RunReport`` holds the reconciliation, per
resolution: ticks in = ticks in bars + late + bad; bars built = written.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import polars as pl

from . import metrics
from .aggregation.builder import ResolutionStats
from .aggregation.engines import BarEngines
from .aggregation.gaps import GapCount
from .aggregation.resample import refuse_upsampling
from .aggregation.resolution import format_duration_ns
from .build import Stages, build_source, build_stages, serve_metrics, stop_metrics
from .checkpoint import Checkpointer
from .config import RunSettings
from .errors import (
    BadInputError,
    LateTicksError,
    PipelineError,
    PipelineStateError,
    SinkUnavailableError,
)
from .lifecycle import Lifecycle
from .report import (
    GapSummary,
    LatenessSummary,
    LateOutputSummary,
    PartialRead,
    ResolutionCounts,
    Revisions,
    RunReport,
    RunStatus,
    StopCause,
    conclude,
    failed_before_start,
)
from .sinks.base import BarSink
from .sinks.queue import WriteReport
from .sources.base import SourceInfo, TickSource
from .urls import redact_url

# Parts of at least this many ticks go to the bar engine in a worker thread: below it the hop
# costs more than the overlap gains (a metered or live trickle).
THREAD_ROWS = 16_384


@dataclass(frozen=True)
class Progress:
    """A snapshot for the live progress line."""

    elapsed_s: float
    ticks: int
    bars_written: int
    queue_depth: int
    queue_capacity: int
    scale: float
    level: str
    read_fraction: float | None = None  # share of a replay's rows processed (None: unknown)
    event_ns: int | None = None  # latest event time handed to the bar engine


class Pipeline:
    """One run: source -> gate -> bars -> write queue -> sink, plus the feedback loop.

    Built by ``build_pipeline`` (or given its ``Stages``), used once::

        async with build_pipeline(settings) as pipeline:
            report = await pipeline.execute()

    ``execute`` starts, ingests to the end (of the input, of ``--duration``, or a stop), writes
    the open windows and closes; leaving the block closes whatever is still open (rolling back).
    Core's ``PipelineRunner`` calls (``start``, ``run``, ``stop``, ``is_running``) and ``finish``
    drive the same steps one at a time. Starting or running a closing or closed pipeline raises
    ``PipelineStateError``.
    """

    def __init__(self, settings: RunSettings, stages: Stages) -> None:
        self.settings = settings
        self.source = stages.source
        self.engine = stages.engine
        self.windows = stages.windows
        self.resolutions = self.engine.resolutions
        self.gaps = stages.gaps
        self.gate = stages.gate
        self.sink = stages.sink
        self.bus = stages.bus
        self.monitor = stages.monitor
        self.queue = stages.queue
        self.handler = stages.handler
        self.late_output = stages.late_output
        self.checkpointer = stages.checkpointer
        self.state = Lifecycle.CREATED
        self.ticks_admitted = 0  # handed to the bar engine (the report's ticks_admitted)
        self.ticks_pulled = 0  # taken from the source (a stop can leave part of a frame)
        self.max_event_ns: int | None = None  # latest event time handed to the bar engine
        self._started_at = time.monotonic()
        self._ingest_s = 0.0
        self._stop_cause: StopCause | None = None  # set: ingest ends at the next safe point
        self._in_put = False  # a write, a checkpoint or the engine's thread: a stop waits for it
        self._input_ended = False  # the source ended by itself (not a stop or an error)
        self._ingest: asyncio.Task[None] | None = None
        self._feedback: asyncio.Task[None] | None = None
        self._commit = True  # what closing the write queue does: commit, or roll back
        self._restored_ticks: dict[str, int] = {}  # open ticks per resolution from a checkpoint
        self._peak_windows = 0  # most closed windows retained for allowed lateness at once
        self._closers = self._close_in_reverse(stages.metrics_server)

    def _close_in_reverse(self, metrics_server: Any) -> contextlib.AsyncExitStack:
        """Everything ``finish`` closes, whatever happened before: the last pushed first."""
        stack = contextlib.AsyncExitStack()
        stack.callback(setattr, self, "state", Lifecycle.CLOSED)
        stack.callback(stop_metrics, metrics_server)
        stack.push_async_callback(self.source.close)
        stack.push_async_callback(self._end_feedback)
        stack.push_async_callback(self.bus.close)
        stack.push_async_callback(self.monitor.aclose)
        if self.late_output is not None:
            stack.callback(self.late_output.close)
        # Even when the flush could not be queued (the store is down), the queue must close: it
        # rolls back, closes the sink and counts what was not written.
        stack.push_async_callback(self._close_queue)
        return stack

    async def __aenter__(self) -> Pipeline:
        self._expect(Lifecycle.CREATED, "entered")
        return self

    async def __aexit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        """Close what is still open; a run that did not finish rolls back.

        A failure to close is raised, unless the block is already raising its own exception.
        """
        if self.state is Lifecycle.CLOSED:
            return
        if exc is None:
            await self.finish(commit=False)
            return
        with contextlib.suppress(PipelineError):
            await self.finish(commit=False)

    def _expect(self, state: Lifecycle, action: str) -> None:
        if self.state is not state:
            raise PipelineStateError(f"a {self.state} pipeline cannot be {action}")

    # -- Core PipelineRunner ------------------------------------------------------------------
    async def start(self) -> None:
        """Open the sink and start the feedback loop; ingest starts with ``run``."""
        self._expect(Lifecycle.CREATED, "started")
        self.state = Lifecycle.RUNNING
        self._started_at = time.monotonic()
        await self.bus.verify()  # rejected credentials fail the run before anything is opened
        await self.queue.start()
        if self.checkpointer is not None:
            await self._restore(self.checkpointer)
        await self.monitor.start()
        self._feedback = asyncio.create_task(self.handler.run(self.bus), name="feedback")

    async def stop(self, drain: bool = True) -> None:
        """Core ``PipelineRunner.stop``: end ingest; open windows are still flushed and written.

        Nothing is ever dropped, so ``drain=False`` behaves like ``drain=True``.
        """
        self.request_stop(StopCause.STOPPED)

    def request_stop(self, reason: StopCause | str) -> None:
        """End ingest at the next safe point (never in the middle of a write), as Ctrl-C does.

        Safe from the event loop's thread only (a signal handler or another thread uses
        ``loop.call_soon_threadsafe``). ``reason`` becomes the report's ``stopped_by``: a
        signal's name (``SIGINT``, ``SIGTERM``) makes the run ``stopped`` with exit code
        128 + its number; any other reason (``shutdown``) ends it like ``--duration``. A string
        that names no ``StopCause`` raises ``ValueError``.
        """
        if self._stop_cause is not None:
            # Asked again (a second Ctrl-C): stop waiting for a store that is down.
            self.queue.give_up()
            return
        self._stop_cause = StopCause(reason)
        if self._ingest is not None and not self._in_put:
            self._ingest.cancel()

    async def run(self, duration_sec: float | None = None) -> None:
        """Ingest until the input ends, ``duration_sec`` passes or ``stop()`` is called."""
        if self.state is Lifecycle.CREATED:
            await self.start()
        self._expect(Lifecycle.RUNNING, "run")
        started = time.monotonic()
        self._ingest = asyncio.create_task(self._ingest_loop(), name="ingest")
        timer = None
        if duration_sec is not None:
            loop = asyncio.get_running_loop()
            timer = loop.call_later(duration_sec, self.request_stop, StopCause.DURATION)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await self._ingest
        finally:
            self._ingest_s = time.monotonic() - started
            if timer is not None:
                timer.cancel()

    def is_running(self) -> bool:
        """True between ``start`` and the end of ``finish``."""
        return self.state in (Lifecycle.RUNNING, Lifecycle.CLOSING)

    # -- one call: start, run, finish, report --------------------------------------------------
    async def execute(self, *, on_start: Callable[[Pipeline], None] | None = None) -> RunReport:
        """Run to the end and close; return the report (a ``PipelineError`` ends up in it).

        ``on_start`` receives the started pipeline (the CLI shows progress, forwards signals).
        """
        error = await self._start_and_run(on_start)
        if error is None and self.settings.on_late == "fail":
            error = self._late_error()
        try:
            await self.finish(commit=not isinstance(error, BadInputError | LateTicksError))
        except PipelineError as exc:
            # The queue's close counts every bar left unwritten; an earlier failure counted
            # those known at its moment only.
            recounted = all(isinstance(e, SinkUnavailableError) for e in (exc, error))
            error = exc if recounted or error is None else error
        report = conclude(self.report(), error)
        if isinstance(error, LateTicksError):  # rolled back: the transactional sink kept nothing
            report.bars_written, report.bars_unwritten = 0, report.bars_built
        report.partial = self._partial(report)
        return report

    async def _start_and_run(
        self, on_start: Callable[[Pipeline], None] | None
    ) -> PipelineError | None:
        try:
            await self.start()
            if on_start is not None:
                on_start(self)
            await self.run(self.settings.duration_s)
        except PipelineError as exc:
            return exc
        return None

    def _late_error(self) -> LateTicksError | None:
        late = max(s.ticks_late for s in self.engine.stats().values())
        if not late:
            return None
        return LateTicksError(
            f"{late:,} ticks came after their window had closed (--on-late fail), so nothing was"
            " written; time-sorted input has none: widen --grace (now"
            f" {format_duration_ns(self.settings.grace_ns)})"
        )

    def _partial(self, report: RunReport) -> PartialRead | None:
        """What a stopped run left out: rows not read, and the last event time it committed.

        None when the input was read to its end or has no end (a live feed). A stop flushes
        the open windows and commits, so every tick taken is in a bar; the last windows were
        cut short.
        """
        ended = (StopCause.END_OF_INPUT, StopCause.BAD_INPUT, StopCause.ERROR)
        if report.stopped_by in ended or not self.source.finite:
            return None
        write = self.queue.report
        committed = write is not None and write.committed
        committed &= report.status in (RunStatus.OK, RunStatus.STOPPED)
        last = self.max_event_ns if committed else None
        return PartialRead(
            rows_not_read=self.source.rows_not_read(report.ticks_read),  # None: not known
            read_fraction=self.source.read_fraction(report.ticks_read),
            last_event_committed=None if last is None else _iso(last),
        )

    async def _restore(self, checkpointer: Checkpointer) -> None:
        saved = await checkpointer.restore()
        if saved is None:
            return
        self.engine = BarEngines.restore(
            self.resolutions,
            self.engine.grace_ns,
            saved.open_state,
            saved.watermarks,
            windows=self.windows,
            allowed_lateness_ns=self.engine.allowed_lateness_ns,
            keep_late=self.engine.keep_late,
        )
        stats = self.engine.stats()
        self._restored_ticks = {label: s.open_ticks for label, s in stats.items()}

    @contextlib.contextmanager
    def _shielded(self) -> Iterator[None]:
        """A stop waits for what runs inside: a write, a commit, the engine in its thread."""
        self._in_put = True
        try:
            yield
        finally:
            self._in_put = False

    async def _checkpoint(self, *, complete: bool = False) -> None:
        assert self.checkpointer is not None
        with self._shielded():
            await self.checkpointer.commit(self.engine, complete=complete)

    # -- the hot path -------------------------------------------------------------------------
    async def _ingest_loop(self) -> None:
        bar_input = self.source.kind == "bars"
        add = self.engine.add_bars if bar_input else self.engine.add_ticks
        if self._stop_cause is not None:
            return
        # A source with no pace of its own (a replay as fast as it reads) is slowed down for
        # the store only: its frames go to the bar engine whole (see RateGate.meter).
        whole = self.source.continuous and self.source.base_rate is None
        async for frame in self.source.batches():
            self.ticks_pulled += frame.height
            if bar_input:
                refuse_upsampling(frame, self.resolutions)
            async for part in self.gate.meter(frame, whole=whole):
                bars = self._with_gaps(await self._fold_in(add, part))
                self.ticks_admitted += part.height
                self._saw_events(part)
                metrics.TICKS.inc(part.height)
                if bars.height:
                    await self._put(bars)
                if self.late_output is not None or self.engine.allowed_lateness_ns:
                    await self._after_late()
                if self._stop_cause is not None:
                    return
            if self.checkpointer is not None and self.checkpointer.due():
                await self._checkpoint()
        self._input_ended = True

    async def _fold_in(
        self, add: Callable[[pl.DataFrame], pl.DataFrame], part: pl.DataFrame
    ) -> pl.DataFrame:
        """Hand ``part`` to the bar engine: a large part in a worker thread, so that the event
        loop meanwhile serves the source (a reader fetching ahead), the feedback and the
        writer. A stop waits for it: cancelled midway, the engine would go on in the thread."""
        if part.height < THREAD_ROWS:
            return add(part)
        with self._shielded():
            return await asyncio.to_thread(add, part)

    async def _after_late(self) -> None:
        """Write the late ticks kept aside and show the engine's state size."""
        open_windows, retained = self.engine.state_rows()
        metrics.ENGINE_WINDOWS.labels(kind="open").set(open_windows)
        metrics.ENGINE_WINDOWS.labels(kind="retained").set(retained)
        self._peak_windows = max(self._peak_windows, retained)
        if self.late_output is None:
            return
        late = self.engine.take_late()
        if late.height:
            with self._shielded():
                await self.late_output.write(late)

    def _saw_events(self, part: pl.DataFrame) -> None:
        high = part.get_column("ts_ns").max() if part.height else None
        if isinstance(high, int) and (self.max_event_ns is None or high > self.max_event_ns):
            self.max_event_ns = high

    def _with_gaps(self, bars: pl.DataFrame) -> pl.DataFrame:
        flat = self.gaps.observe(bars)
        return pl.concat([bars, flat]) if flat.height else bars

    async def _put(self, bars: pl.DataFrame) -> None:
        with self._shielded():
            await self.queue.put(bars)

    # -- the end ------------------------------------------------------------------------------
    async def finish(self, *, commit: bool) -> WriteReport | None:
        """Write every open window, close the sink (commit or roll back), end feedback.

        Return the write queue's report. Whatever fails on the way, every part is closed.
        """
        if self.state in (Lifecycle.CLOSING, Lifecycle.CLOSED):
            raise PipelineStateError(f"a {self.state} pipeline cannot be finished again")
        self.state = Lifecycle.CLOSING
        self._commit = commit
        async with self._closers:
            await self._flush(commit)
        return self.queue.report

    async def _flush(self, commit: bool) -> None:
        at_boundary = self.ticks_pulled == self.ticks_admitted
        # Only a restored (or fresh) state is checkpointed: a refused checkpoint stays.
        restored = self.checkpointer is not None and self.checkpointer.restored
        checkpoint = commit and restored and at_boundary
        # A replay read to its end is complete: its last bars and a checkpoint saying so
        # commit together. Otherwise the checkpoint comes before the flush: a later run
        # continues the open windows, whose bars the flush writes cut short meanwhile.
        complete = self.source.transactional and self._input_ended
        if checkpoint and not complete:
            await self._checkpoint()
        if commit:
            await self._put(self._with_gaps(self.engine.flush()))
            await self._after_late()
        if checkpoint and complete:
            await self._checkpoint(complete=True)

    async def _close_queue(self) -> None:
        await self.queue.close(commit=self._commit)

    async def _end_feedback(self) -> None:
        if self._feedback is not None:
            self._feedback.cancel()
            with contextlib.suppress(asyncio.CancelledError, PipelineError):
                await self._feedback

    # -- what it did ----------------------------------------------------------------------------
    def progress(self) -> Progress:
        """Return a snapshot for the progress line."""
        return Progress(
            elapsed_s=time.monotonic() - self._started_at,
            ticks=self.ticks_admitted,
            bars_written=self.queue.bars_written,
            queue_depth=self.queue.depth,
            queue_capacity=self.queue.capacity,
            scale=self.gate.scale,
            level=str(getattr(self.gate.level, "value", self.gate.level)),
            # Rows processed, not read: a reader runs ahead of the bar engine.
            read_fraction=self.source.read_fraction(self.ticks_admitted + self.source.bad_rows),
            event_ns=self.max_event_ns,
        )

    def report(self) -> RunReport:
        """Build the run report from the engine, queue and handler counters."""
        bad = self.source.bad_rows
        per_res = {
            label: self._counts(label, stats, bad) for label, stats in self.engine.stats().items()
        }
        write = self.queue.report
        built = sum(r.bars_built for r in per_res.values())
        written = write.bars_written if write else 0
        return RunReport(
            source=_describe_source(self.source, self.engine),
            sink=self.sink.describe(),
            table=self.settings.table,
            bus=redact_url(self.settings.bus) if self.settings.bus else "memory://",
            elapsed_s=time.monotonic() - self._started_at,
            ingest_s=self._ingest_s,
            ticks_read=self.ticks_pulled + bad,
            ticks_admitted=self.ticks_admitted,
            ticks_unprocessed=self.ticks_pulled - self.ticks_admitted,
            bad_rows=bad,
            bad_reasons=dict(self.source.bad_reasons),
            resolutions=per_res,
            bars_built=built,
            bars_written=written,
            bars_unwritten=write.bars_unwritten if write else built - written,
            write=write,
            feedback=self.handler.summary(),
            stopped_by=self._stop_cause or StopCause.END_OF_INPUT,
            lateness=self._lateness(),
        )

    def _counts(self, label: str, s: ResolutionStats, bad: int) -> ResolutionCounts:
        gaps = self.gaps.counts.get(label)
        return ResolutionCounts(
            ticks_in=s.ticks_in + bad,
            ticks_in_bars=s.ticks_in_bars,
            ticks_late=s.ticks_late,
            bad=bad,
            open_ticks=s.open_ticks,
            outside_session=s.ticks_outside,
            bars_built=s.bars_emitted + (gaps.filled if gaps else 0),
            gaps=_gap_summary(gaps) if gaps else None,
            restored=self._restored_ticks[label] if self._restored_ticks else None,
            revisions=_revisions(s) if self.engine.allowed_lateness_ns else None,
        )

    def _lateness(self) -> LatenessSummary | None:
        """Allowed lateness, retained state and the side output (None if neither is used)."""
        if not self.engine.allowed_lateness_ns and self.late_output is None:
            return None
        open_windows, retained = self.engine.state_rows()
        late = self.late_output
        return LatenessSummary(
            allowed_lateness=format_duration_ns(self.settings.allowed_lateness_ns),
            open_windows=open_windows,
            retained_windows=retained,
            peak_retained_windows=max(self._peak_windows, retained),
            late_output=LateOutputSummary(late.target.describe(), late.rows) if late else None,
        )


def _revisions(stats: ResolutionStats) -> Revisions:
    return Revisions(
        revised=stats.bars_revised,
        revising_ticks=stats.ticks_revising,
        rewritten=stats.bars_rewritten,
        retained_windows=stats.retained_windows,
    )


def _gap_summary(count: GapCount) -> GapSummary:
    first = tuple(f"{symbol} {_iso(ts_ns)}" for symbol, ts_ns in count.first)
    return GapSummary(gaps=count.gaps, filled=count.filled, first=first)


def _iso(ts_ns: int) -> str:
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC)
    return stamp.isoformat(timespec="minutes").replace("+00:00", "Z")


def _describe_source(source: TickSource, engine: BarEngines) -> SourceInfo:
    """The source's own description, with the engine's count of late ticks per input file."""
    info = source.describe()
    late = engine.late_by_origin()
    if "files" in info:
        info["files"] = [
            {**stat, "late": late.get(number, 0)} for number, stat in enumerate(info["files"])
        ]
    return info


def build_pipeline(
    settings: RunSettings,
    *,
    sink: BarSink | None = None,
    wrap_source: Callable[[TickSource], TickSource] | None = None,
) -> Pipeline:
    """Assemble the pipeline the settings describe; nothing is opened but the metrics port.

    ``sink`` replaces the one ``settings.sink`` names (embedding, tests); ``wrap_source``
    wraps the source built from the settings (``mdp serve``'s replay filters). Raise
    ``PipelineError`` (mostly ``UsageError``) for settings that cannot make a run.
    """
    source = build_source(settings)
    if wrap_source is not None:
        source = wrap_source(source)
    # Bound now, so that a port in use is a usage error before anything starts.
    server = serve_metrics(settings.metrics_port, source.provider)
    try:
        stages = build_stages(settings, source, sink=sink, metrics_server=server)
    except PipelineError:
        stop_metrics(server)
        raise
    return Pipeline(settings, stages)


async def execute(
    settings: RunSettings,
    *,
    on_start: Callable[[Pipeline], None] | None = None,
    sink: BarSink | None = None,
    wrap_source: Callable[[TickSource], TickSource] | None = None,
) -> RunReport:
    """Build and run the pipeline the settings describe; return its report (never raises
    ``PipelineError``: settings that cannot make a run give a report that never started).

    The two calls every caller makes: ``build_pipeline`` then ``Pipeline.execute`` (``mdp
    run``, ``mdp.run()``, the service's runs). ``on_start`` receives the started pipeline.
    """
    try:
        pipeline = build_pipeline(settings, sink=sink, wrap_source=wrap_source)
    except PipelineError as exc:
        return failed_before_start(settings.sink, exc)
    async with pipeline:
        return await pipeline.execute(on_start=on_start)
