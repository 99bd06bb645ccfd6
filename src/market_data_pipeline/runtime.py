"""Wire the stages together, own their lifecycle and count every tick.

One tick's path (see docs/architecture.md)::

    source.batches() -> RateGate.meter() -> BarEngine.add_ticks() -> WriteQueue.put()
        -> writer task -> BarSink.write_frame()        (commit per batch, or per run for replays)
    WriteQueue depth -> WatermarkMonitor.observe() -> FeedbackEvent -> bus
        -> FeedbackHandler.handle() -> RateAdjustment -> RateGate.apply()

``Pipeline`` is Core's ``PipelineRunner``. Stopping (end of input, ``--duration``, Ctrl-C) never
interrupts a write: the ingest task is cancelled only while it waits on the source or the gate,
then every open window is flushed and written before the sink closes. The ``RunReport`` holds
the reconciliation, per resolution: ticks in = ticks in bars + late + bad; bars built = written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from . import metrics
from .bars.builder import DEFAULT_MAX_HOLD_S, ResolutionStats
from .bars.calendars import TimeFrame, Windows, parse_week_start, zone
from .bars.engines import BarEngines, windows_for
from .bars.gaps import GapCount, GapTracker
from .bars.resample import refuse_upsampling
from .bars.resolution import Resolution, parse_duration_ns, parse_resolutions
from .bus import open_bus
from .bus.base import FeedbackBus
from .bus.urls import is_memory_bus
from .checkpoint import Checkpointer, layout_of
from .config import DEFAULT_RESOLUTION, DEMO_DURATION_S, DEMO_RATE, DEMO_RESOLUTION, RunSettings
from .errors import (
    BadInputError,
    LateTicksError,
    PipelineError,
    SinkUnavailableError,
    UsageError,
)
from .flow.feedback import FeedbackHandler, ScalePolicy
from .flow.rate_gate import RateGate
from .flow.watermarks import WatermarkMonitor, Watermarks
from .isotime import iso_time_ns
from .late_output import LateOutput, parse_late_output
from .report import RunReport, conclude, failed_before_start, write_dict
from .sinks import open_sink
from .sinks.base import BarSink
from .sinks.queue import (
    DEFAULT_OPEN_RETRY_FOR_S,
    DEFAULT_RETRY_FOR_S,
    RetryPolicy,
    WriteQueue,
    WriteReport,
)
from .sinks.urls import redact_url
from .sources.base import TickSource
from .sources.formats import layout_for
from .sources.replay import ReplaySource, check_head, expand_inputs
from .sources.synthetic import SyntheticSource

log = logging.getLogger(__name__)

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


def build_source(settings: RunSettings) -> TickSource:
    """Create the source the settings ask for (replay when ``input`` is set)."""
    if settings.is_replay:
        if settings.input is None:
            raise UsageError("--source replay needs --input PATH (a file, glob or directory)")
        return ReplaySource(
            expand_inputs(settings.input),
            on_duplicate=settings.on_duplicate,
            with_origin=True,
            kind=settings.kind,
            symbol=settings.symbol,
            ts_unit=settings.ts_unit,
            speed=settings.speed,
            on_bad_row=settings.on_bad_row,
            layout=layout_for(settings.format, settings.columns),
            ts_format=settings.ts_format,
            tz=zone(settings.tz).key,
            resumable=settings.resume,
        )
    if settings.source == "nats":
        return _nats_source(settings)
    if settings.source is not None and settings.source.startswith("provider:"):
        from .sources.providers import ProviderSource

        kind = settings.kind or "trades"
        if kind == "bars":
            raise UsageError("a provider source streams trades or quotes, not bars")
        return ProviderSource(
            settings.source.removeprefix("provider:"),
            symbols=[settings.symbol] if settings.symbol else list(settings.symbols),
            kind=kind,
            options=settings.provider_option,
        )
    if settings.kind == "bars":
        raise UsageError("the synthetic source makes trades or quotes, not bars")
    symbols = [settings.symbol] if settings.symbol else list(settings.symbols)
    return SyntheticSource(
        symbols=symbols,
        seed=settings.seed,
        kind=settings.kind or "trades",
        rate=_synthetic_rate(settings),
        ticks=settings.ticks,
        start_ns=iso_time_ns(settings.start, "--start"),
    )


def check_replay_head(settings: RunSettings) -> None:
    """Raise the ``BadInputError`` a replay would stop at in its files' header or first rows.

    Cheap (no row count, no pipeline): a service fails such a run at once, without starting it.
    """
    if not settings.is_replay or settings.input is None:
        return
    check_head(
        expand_inputs(settings.input),
        kind=settings.kind,
        symbol=settings.symbol,
        ts_unit=settings.ts_unit,
        on_bad_row=settings.on_bad_row,
        layout=layout_for(settings.format, settings.columns),
        ts_format=settings.ts_format,
        tz=zone(settings.tz).key,
    )


def _nats_source(settings: RunSettings) -> TickSource:
    from .sources.nats import NatsSource

    if settings.kind not in (None, "trades", "quotes"):
        raise UsageError("the NATS source takes trades or quotes, not bars")
    assert settings.stream is not None  # the settings model requires it
    return NatsSource(
        url=settings.nats_url,
        stream=settings.stream,
        subject=settings.subject,
        durable=settings.durable,
        fetch_batch=settings.fetch_batch,
        idle_timeout_s=settings.idle_timeout,
    )


def _synthetic_rate(settings: RunSettings) -> float | None:
    return settings.rate if settings.rate or not settings.is_demo else DEMO_RATE


def resolutions_for(settings: RunSettings) -> list[Resolution]:
    """Return the resolutions to build (the demo builds 1s and 1m bars)."""
    default = DEMO_RESOLUTION if settings.is_demo else DEFAULT_RESOLUTION
    return parse_resolutions(settings.resolution or default)


def timeframe_for(settings: RunSettings) -> TimeFrame:
    """Return how the settings lay windows out: zone, week start, calendar, alignment."""
    return TimeFrame(
        tz=zone(settings.tz).key,
        week_start=parse_week_start(settings.week_start),
        calendar=settings.calendar,
        align=settings.align,
    )


def engine_for(
    settings: RunSettings, *, max_hold_s: float = 0.0
) -> tuple[BarEngines, dict[str, Windows]]:
    """Return the bar engine the settings describe, and its windows keyed by stored label.

    ``max_hold_s`` lets the engine hold small frames that may close windows (see BarEngine).
    """
    resolutions, windows = windows_for(resolutions_for(settings), timeframe_for(settings))
    grace_ns = parse_duration_ns(settings.grace, what="grace")
    engine = BarEngines(
        resolutions,
        grace_ns,
        windows=windows,
        max_hold_s=max_hold_s,
        allowed_lateness_ns=lateness_ns(settings),
        keep_late=settings.late_output is not None,
    )
    return engine, windows


def lateness_ns(settings: RunSettings) -> int:
    """Return the allowed lateness the settings give, in nanoseconds."""
    return parse_duration_ns(settings.allowed_lateness, what="allowed-lateness")


def duration_for(settings: RunSettings) -> float | None:
    """Return the wall-clock limit of the run (the demo runs ~10 s)."""
    return DEMO_DURATION_S if settings.is_demo else settings.duration


class Pipeline:
    """One run: source -> gate -> bars -> write queue -> sink, plus the feedback loop."""

    def __init__(
        self, settings: RunSettings, source: TickSource, *, sink: BarSink | None = None
    ) -> None:
        self.settings = settings
        self.source = source
        checkpointed = source.checkpoint_name is not None
        # A checkpoint commits the open windows: nothing that may close can be held back then.
        hold = DEFAULT_MAX_HOLD_S if source.continuous and not checkpointed else 0.0
        self.engine, self.windows = engine_for(settings, max_hold_s=hold)
        self.resolutions = self.engine.resolutions
        if settings.fill_gaps and settings.calendar is None:
            raise UsageError("--fill-gaps needs --calendar CODE: gaps are in-session windows")
        if settings.fill_gaps and self.engine.allowed_lateness_ns:
            raise UsageError(
                "--fill-gaps does not follow revised bars: drop --fill-gaps or --allowed-lateness"
            )
        self.gaps = GapTracker(self.windows, fill=settings.fill_gaps)
        self.gate = RateGate(source.provider, base_rate=source.base_rate)
        transactional = source.transactional or checkpointed
        self.sink = sink or open_sink(
            settings.sink, transactional=transactional, table=settings.table
        )
        if settings.late_output is not None and source.kind == "bars":
            raise UsageError("--late-output keeps late trades and quotes, not input bars")
        self.late_output = (
            LateOutput(parse_late_output(settings.late_output), self.sink)
            if settings.late_output is not None
            else None
        )
        self._grace_ns = self.engine.grace_ns
        self.bus: FeedbackBus = open_bus(
            settings.bus,
            namespace=settings.namespace,
            group=settings.group,
            streams=settings.feedback_stream,
            **_bus_limits(settings),
        )
        self.monitor = WatermarkMonitor(
            self.bus, coordinator_id=settings.coordinator, watermarks=_watermarks(settings)
        )
        self.queue = WriteQueue(
            self.sink,
            capacity_rows=settings.queue_capacity,
            batch_rows=settings.batch_rows,
            batch_interval_s=settings.batch_interval,
            retry=_retry_policy(settings),
            observers=[self.monitor, _DepthGauge()],
            open_retry=_open_retry_policy(settings),
        )
        policy = ScalePolicy(
            soft=settings.soft_scale, hard=settings.hard_scale, overrides=settings.policy
        )
        self.handler = FeedbackHandler(
            {source.provider: self.gate},
            policy,
            stale_after_s=settings.stale_after,
            fallback=settings.bus_fallback,
        )
        self.ticks_admitted = 0  # handed to the bar engine (the report's ticks_admitted)
        self.ticks_pulled = 0  # taken from the source (a stop can leave part of a frame)
        self.max_event_ns: int | None = None  # latest event time handed to the bar engine
        self._started_at = 0.0
        self._ingest_started = 0.0
        self._ingest_s = 0.0
        self._running = False
        self._stop_requested = False
        self._stopped_by = "end of input"
        self._in_put = False
        self._input_ended = False  # the source ended by itself (not a stop or an error)
        self._ingest: asyncio.Task[None] | None = None
        self._feedback: asyncio.Task[None] | None = None
        self.checkpointer: Checkpointer | None = None
        self._restored_ticks: dict[str, int] = {}  # open ticks per resolution from a checkpoint
        self._peak_windows = 0  # most closed windows retained for allowed lateness at once
        if checkpointed:
            extra = _checkpoint_extra(source, timeframe_for(settings))
            if self.engine.allowed_lateness_ns:  # retained windows are part of the state
                extra["allowed_lateness_ns"] = self.engine.allowed_lateness_ns
            layout = layout_of([res.label for res in self.resolutions], self._grace_ns, extra)
            self.checkpointer = Checkpointer(
                self.sink, self.queue, source, layout, settings.checkpoint_interval
            )

    # -- Core PipelineRunner ------------------------------------------------------------------
    async def start(self) -> None:
        """Open the sink and start the feedback loop; ingest starts with ``run``."""
        self._started_at = time.monotonic()
        await self.bus.verify()  # rejected credentials fail the run before anything is opened
        await self.queue.start()
        if self.checkpointer is not None:
            await self._restore(self.checkpointer)
        await self.monitor.start()
        self._feedback = asyncio.create_task(self.handler.run(self.bus), name="feedback")
        self._running = True

    async def stop(self, drain: bool = True) -> None:
        """Core ``PipelineRunner.stop``: end ingest; open windows are still flushed and written.

        Nothing is ever dropped, so ``drain=False`` behaves like ``drain=True``.
        """
        self.request_stop("stopped")

    def request_stop(self, reason: str) -> None:
        """End ingest at the next safe point (never in the middle of a write), as Ctrl-C does.

        Safe from the event loop's thread only (a signal handler or another thread uses
        ``loop.call_soon_threadsafe``). ``reason`` becomes the report's ``stopped_by``: a
        signal's name (``SIGINT``, ``SIGTERM``) makes the run ``stopped`` with exit code
        128 + its number; any other reason (``shutdown``) ends it like ``--duration``.
        """
        if self._stop_requested:
            # Asked again (a second Ctrl-C): stop waiting for a store that is down.
            self.queue.give_up()
            return
        self._stop_requested = True
        self._stopped_by = reason
        if self._ingest is not None and not self._in_put:
            self._ingest.cancel()

    async def run(self, duration_sec: float | None = None) -> None:
        """Ingest until the input ends, ``duration_sec`` passes or ``stop()`` is called."""
        if not self._running:
            await self.start()
        self._ingest_started = time.monotonic()
        self._ingest = asyncio.create_task(self._ingest_loop(), name="ingest")
        timer = None
        if duration_sec is not None:
            loop = asyncio.get_running_loop()
            timer = loop.call_later(duration_sec, self.request_stop, "duration")
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await self._ingest
        finally:
            self._ingest_s = time.monotonic() - self._ingest_started
            if timer is not None:
                timer.cancel()

    async def _restore(self, checkpointer: Checkpointer) -> None:
        saved = await checkpointer.restore()
        if saved is None:
            return
        self.engine = BarEngines.restore(
            self.resolutions,
            self._grace_ns,
            saved.open_state,
            saved.watermarks,
            windows=self.windows,
            allowed_lateness_ns=self.engine.allowed_lateness_ns,
            keep_late=self.engine.keep_late,
        )
        stats = self.engine.stats()
        self._restored_ticks = {label: s.open_ticks for label, s in stats.items()}

    async def _checkpoint(self, *, complete: bool = False) -> None:
        assert self.checkpointer is not None
        self._in_put = True  # a stop waits for the commit, like a write
        try:
            await self.checkpointer.commit(self.engine, complete=complete)
        finally:
            self._in_put = False

    def is_running(self) -> bool:
        """True between ``start`` and the end of ``finish``."""
        return self._running

    # -- the hot path -------------------------------------------------------------------------
    async def _ingest_loop(self) -> None:
        bar_input = self.source.kind == "bars"
        add = self.engine.add_bars if bar_input else self.engine.add_ticks
        if self._stop_requested:
            return
        async for frame in self.source.batches():
            self.ticks_pulled += frame.height
            if bar_input:
                refuse_upsampling(frame, self.resolutions)
            async for part in self.gate.meter(frame):
                bars = self._with_gaps(await self._fold_in(add, part))
                self.ticks_admitted += part.height
                self._saw_events(part)
                metrics.TICKS.inc(part.height)
                if bars.height:
                    await self._put(bars)
                if self.late_output is not None or self.engine.allowed_lateness_ns:
                    await self._after_late()
                if self._stop_requested:
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
        self._in_put = True
        try:
            return await asyncio.to_thread(add, part)
        finally:
            self._in_put = False

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
            self._in_put = True  # a stop waits for it, like a write
            try:
                await self.late_output.write(late)
            finally:
                self._in_put = False

    def _saw_events(self, part: pl.DataFrame) -> None:
        high = part.get_column("ts_ns").max() if part.height else None
        if isinstance(high, int) and (self.max_event_ns is None or high > self.max_event_ns):
            self.max_event_ns = high

    def _with_gaps(self, bars: pl.DataFrame) -> pl.DataFrame:
        flat = self.gaps.observe(bars)
        return pl.concat([bars, flat]) if flat.height else bars

    async def _put(self, bars: pl.DataFrame) -> None:
        self._in_put = True
        try:
            await self.queue.put(bars)
        finally:
            self._in_put = False

    # -- the end ------------------------------------------------------------------------------
    async def finish(self, *, commit: bool) -> WriteReport:
        """Write every open window, close the sink (commit or roll back), end feedback."""
        try:
            try:
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
            finally:
                # Even when the flush could not be queued (the store is down), the queue must
                # close: it rolls back, closes the sink and counts what was not written.
                try:
                    write = await self.queue.close(commit=commit)
                finally:
                    if self.late_output is not None:
                        self.late_output.close()
            return write
        finally:
            self._running = False
            await self.monitor.aclose()
            await self.bus.close()
            if self._feedback is not None:
                self._feedback.cancel()
                with contextlib.suppress(asyncio.CancelledError, PipelineError):
                    await self._feedback
            await self.source.close()

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

    def report(self, write: WriteReport | None) -> RunReport:
        """Build the run report from the engine, queue and handler counters."""
        stats = self.engine.stats()
        bad = self.source.bad_rows
        per_res = {
            label: {
                "ticks_in": s.ticks_in + bad,
                "ticks_in_bars": s.ticks_in_bars,
                "ticks_late": s.ticks_late,
                "bad": bad,
                "open_ticks": s.open_ticks,
                "outside_session": s.ticks_outside,
                "bars_built": s.bars_emitted + self._gap_count(label).filled,
                **self._gap_dict(label),
                **({"restored": self._restored_ticks[label]} if self._restored_ticks else {}),
                **(_revisions(s) if self.engine.allowed_lateness_ns else {}),
            }
            for label, s in stats.items()
        }
        write = write or self.queue.report
        built = sum(r["bars_built"] for r in per_res.values())
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
            write=write_dict(write),
            feedback=self.handler.summary(),
            stopped_by=self._stopped_by,
            lateness=self._lateness(),
        )

    def _lateness(self) -> dict[str, Any]:
        """Allowed lateness, retained state and the side output, for the report (empty if
        neither is used)."""
        if not self.engine.allowed_lateness_ns and self.late_output is None:
            return {}
        open_windows, retained = self.engine.state_rows()
        out: dict[str, Any] = {
            "allowed_lateness": self.settings.allowed_lateness,
            "open_windows": open_windows,
            "retained_windows": retained,
            "peak_retained_windows": max(self._peak_windows, retained),
        }
        if self.late_output is not None:
            out["late_output"] = self.late_output.describe()
        return out

    def _gap_count(self, label: str) -> GapCount:
        return self.gaps.counts.get(label) or GapCount()

    def _gap_dict(self, label: str) -> dict[str, Any]:
        if label not in self.gaps.counts:
            return {}
        count = self.gaps.counts[label]
        first = [f"{symbol} {_iso(ts_ns)}" for symbol, ts_ns in count.first]
        return {"gaps": count.gaps, "gaps_filled": count.filled, "first_gaps": first}


def _checkpoint_extra(source: TickSource, timeframe: TimeFrame) -> dict[str, Any]:
    """What a checkpoint depends on besides resolutions and grace: the source's own part and,
    when not the default, how windows are laid out (zone, week start, calendar, alignment)."""
    extra = source.checkpoint_layout()
    if timeframe != TimeFrame():
        extra["windows"] = {
            "tz": timeframe.tz,
            "week_start": timeframe.week_start,
            "calendar": timeframe.calendar,
            "align": timeframe.align,
        }
    return extra


def _revisions(stats: ResolutionStats) -> dict[str, int]:
    """Per resolution: bars revised by late ticks, those ticks (inside ticks_in_bars), bars
    written again (inside bars_built) and closed windows still retained."""
    return {
        "revised": stats.bars_revised,
        "revising_ticks": stats.ticks_revising,
        "rewritten": stats.bars_rewritten,
        "retained_windows": stats.retained_windows,
    }


def _iso(ts_ns: int) -> str:
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC)
    return stamp.isoformat(timespec="minutes").replace("+00:00", "Z")


def _bus_limits(settings: RunSettings) -> dict[str, int]:
    if is_memory_bus(settings.bus):
        return {}
    return {"max_entry_bytes": settings.bus_max_entry_bytes, "dlq_maxlen": settings.dlq_maxlen}


def _retry_policy(settings: RunSettings) -> RetryPolicy:
    if settings.write_retry_for is None:
        return RetryPolicy(attempts=settings.write_attempts, retry_for_s=DEFAULT_RETRY_FOR_S)
    budget_ns = parse_duration_ns(settings.write_retry_for, what="write-retry-for")
    return RetryPolicy(attempts=settings.write_attempts, retry_for_s=budget_ns / 1e9)


def _open_retry_policy(settings: RunSettings) -> RetryPolicy:
    # A store unreachable at start is most often a wrong address: fail in seconds, unless
    # --write-retry-for was given to ask start to wait for it too.
    if settings.write_retry_for is not None:
        return _retry_policy(settings)
    return RetryPolicy(attempts=settings.write_attempts, retry_for_s=DEFAULT_OPEN_RETRY_FOR_S)


class _DepthGauge:
    def observe(self, depth: int, capacity: int) -> None:
        metrics.WRITE_QUEUE_DEPTH.set(depth)


def _watermarks(settings: RunSettings) -> Watermarks:
    return Watermarks(
        soft_enter=settings.soft_enter,
        soft_exit=settings.soft_exit,
        hard_enter=settings.hard_enter,
        hard_exit=settings.hard_exit,
        dwell_s=settings.dwell,
    )


def _describe_source(source: TickSource, engine: BarEngines) -> dict[str, Any]:
    """The source's own description, with the engine's count of late ticks per input file."""
    info: dict[str, Any] = dict(source.describe())
    late = engine.late_by_origin()
    if "files" in info:
        info["files"] = [
            {**stat, "late": late.get(number, 0)} for number, stat in enumerate(info["files"])
        ]
    return info


async def execute(
    settings: RunSettings,
    *,
    on_start: Callable[[Pipeline], None] | None = None,
    sink: BarSink | None = None,
    wrap_source: Callable[[TickSource], TickSource] | None = None,
) -> RunReport:
    """Run the pipeline the settings describe and return its report (never raises PipelineError).

    ``on_start`` receives the running pipeline (the CLI uses it for progress and signals);
    ``sink`` replaces the one ``settings.sink`` names (embedding, tests); ``wrap_source``
    wraps the source built from the settings (``mdp serve``'s replay filters).
    """
    try:
        source = build_source(settings)
        if wrap_source is not None:
            source = wrap_source(source)
    except PipelineError as exc:
        return failed_before_start(settings.sink, exc)
    server = None
    try:
        server = _serve_metrics(settings.metrics_port, source.provider)
        pipeline = Pipeline(settings, source, sink=sink)
    except PipelineError as exc:
        _stop_server(server)
        await source.close()
        return failed_before_start(settings.sink, exc)
    write: WriteReport | None = None
    error: PipelineError | None = None
    try:
        await pipeline.start()
        if on_start is not None:
            on_start(pipeline)
        await pipeline.run(duration_for(settings))
    except PipelineError as exc:
        error = exc
    if error is None and settings.on_late == "fail":
        error = _late_error(pipeline)
    commit = not isinstance(error, BadInputError | LateTicksError)
    try:
        write = await pipeline.finish(commit=commit)
    except PipelineError as exc:
        # The queue's close counts every bar left unwritten; an earlier failure counted those
        # known at its moment only.
        final = isinstance(exc, SinkUnavailableError) and isinstance(error, SinkUnavailableError)
        error = exc if final or error is None else error
    finally:
        _stop_server(server)
    report = conclude(pipeline.report(write), error)
    if isinstance(error, LateTicksError):  # rolled back: the transactional sink kept nothing
        report.bars_written, report.bars_unwritten = 0, report.bars_built
    report.partial = _partial(pipeline, report, write)
    return report


def _partial(pipeline: Pipeline, report: RunReport, write: WriteReport | None) -> dict[str, Any]:
    """What a stopped run left out: rows not read, and the last event time it committed.

    Empty when the input was read to its end or has no end (a live feed). A stop flushes the
    open windows and commits, so every tick taken is in a bar; the last windows were cut short.
    """
    source = pipeline.source
    if report.stopped_by in ("end of input", "bad input", "error") or not source.finite:
        return {}
    left = source.rows_not_read(report.ticks_read)  # exact, or None: not known
    committed = write is not None and write.committed and report.status in ("ok", "stopped")
    last = pipeline.max_event_ns if committed else None
    return {
        "rows_not_read": left,
        "rows_not_read_exact": left is not None,
        "read_fraction": source.read_fraction(report.ticks_read),
        "last_event_committed": None if last is None else _iso(last),
    }


def _late_error(pipeline: Pipeline) -> LateTicksError | None:
    late = max(s.ticks_late for s in pipeline.engine.stats().values())
    if not late:
        return None
    return LateTicksError(
        f"{late:,} ticks came after their window had closed (--on-late fail), so nothing was"
        f" written; time-sorted input has none: widen --grace (now {pipeline.settings.grace})"
    )


def _stop_server(server: Any) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()


def _serve_metrics(port: int | None, provider: str) -> Any:
    metrics.RATE_SCALE.labels(provider=provider).set(1.0)
    metrics.BACKPRESSURE_LEVEL.labels(provider=provider).set(0)
    if port is None:
        return None
    try:
        server, _thread = metrics.serve_metrics(port)
    except OSError as exc:
        raise UsageError(f"cannot serve metrics on 127.0.0.1:{port}: {exc.strerror}") from None
    return server
