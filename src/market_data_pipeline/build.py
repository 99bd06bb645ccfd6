"""Assemble a run from its settings: the source, the bar engine and every stage around them.

``build_stages`` makes the parts a ``Pipeline`` (runtime.py) runs; nothing here opens a file,
a store or a connection, except ``serve_metrics``. The functions that read the settings the
same way everywhere live here too: ``build_source`` (``mdp publish``), ``engine_for``
(``mdp.bars``, the service's checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import metrics
from .aggregation.builder import DEFAULT_MAX_HOLD_S
from .aggregation.calendars import TimeFrame, Windows, parse_week_start, zone
from .aggregation.engines import BarEngines, windows_for
from .aggregation.gaps import GapTracker
from .aggregation.resolution import parse_resolutions
from .bus import open_bus
from .bus.base import FeedbackBus
from .bus.urls import is_memory_bus
from .checkpoint import Checkpointer, layout_of
from .config import RunSettings
from .errors import UsageError
from .flow.feedback import FeedbackHandler, ScalePolicy
from .flow.rate_gate import RateGate
from .flow.watermarks import WatermarkMonitor, Watermarks
from .isotime import iso_time_ns
from .late_output import LateOutput, parse_late_output
from .sinks import open_sink
from .sinks.base import BarSink
from .sinks.queue import (
    DEFAULT_OPEN_RETRY_FOR_S,
    DEFAULT_RETRY_FOR_S,
    RetryPolicy,
    WriteQueue,
)
from .sources.base import TickSource
from .sources.replay.formats import layout_for
from .sources.replay.source import ReplaySource, check_head, expand_inputs
from .sources.synthetic import SyntheticSource


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
        rate=settings.rate,
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
    from .sources.nats.source import NatsSource

    if settings.kind not in (None, "trades", "quotes"):
        raise UsageError("the NATS source takes trades or quotes, not bars")
    assert settings.stream is not None  # the settings model requires it
    return NatsSource(
        url=settings.nats_url,
        stream=settings.stream,
        subject=settings.subject,
        durable=settings.durable,
        fetch_batch=settings.fetch_batch,
        idle_timeout_s=settings.idle_timeout_s,
    )


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
    resolutions, windows = windows_for(
        parse_resolutions(settings.resolution), timeframe_for(settings)
    )
    engine = BarEngines(
        resolutions,
        settings.grace_ns,
        windows=windows,
        max_hold_s=max_hold_s,
        allowed_lateness_ns=settings.allowed_lateness_ns,
        keep_late=settings.late_output is not None,
    )
    return engine, windows


@dataclass
class Stages:
    """The parts of one run, as ``build_pipeline`` assembles them from settings.

    ``windows`` are the engine's, keyed by stored label; ``metrics_server`` is the Prometheus
    endpoint (``--metrics-port``), already listening, stopped when the pipeline closes.
    """

    source: TickSource
    engine: BarEngines
    windows: dict[str, Windows]
    gaps: GapTracker
    gate: RateGate
    sink: BarSink
    bus: FeedbackBus
    monitor: WatermarkMonitor
    queue: WriteQueue
    handler: FeedbackHandler
    late_output: LateOutput | None = None
    checkpointer: Checkpointer | None = None
    metrics_server: Any = None


def build_stages(
    settings: RunSettings,
    source: TickSource,
    *,
    sink: BarSink | None = None,
    metrics_server: Any = None,
) -> Stages:
    """Build every part of a run around ``source``: bar engine, gate, sink, queue, feedback."""
    checkpointed = source.checkpoint_name is not None
    # A checkpoint commits the open windows: nothing that may close can be held back then.
    hold = DEFAULT_MAX_HOLD_S if source.continuous and not checkpointed else 0.0
    engine, windows = engine_for(settings, max_hold_s=hold)
    _refuse_gap_conflicts(settings, engine)
    sink = sink or open_sink(
        settings.sink, transactional=source.transactional or checkpointed, table=settings.table
    )
    late_output = _late_output(settings, source, sink)
    bus = _feedback_bus(settings)
    monitor = WatermarkMonitor(
        bus, coordinator_id=settings.coordinator, watermarks=_watermarks(settings)
    )
    queue = _write_queue(settings, sink, monitor)
    gate = RateGate(source.provider, base_rate=source.base_rate)
    handler = _feedback_handler(settings, {source.provider: gate})
    return Stages(
        source=source,
        engine=engine,
        windows=windows,
        gaps=GapTracker(windows, fill=settings.fill_gaps),
        gate=gate,
        sink=sink,
        bus=bus,
        monitor=monitor,
        queue=queue,
        handler=handler,
        late_output=late_output,
        checkpointer=_checkpointer(settings, source, engine, sink, queue) if checkpointed else None,
        metrics_server=metrics_server,
    )


def _feedback_bus(settings: RunSettings) -> FeedbackBus:
    return open_bus(
        settings.bus,
        namespace=settings.namespace,
        group=settings.group,
        streams=settings.feedback_stream,
        **_bus_limits(settings),
    )


def _write_queue(settings: RunSettings, sink: BarSink, monitor: WatermarkMonitor) -> WriteQueue:
    return WriteQueue(
        sink,
        capacity_rows=settings.queue_capacity,
        batch_rows=settings.batch_rows,
        batch_interval_s=settings.batch_interval_s,
        retry=_retry_policy(settings),
        observers=[monitor, _DepthGauge()],
        open_retry=_open_retry_policy(settings),
    )


def _feedback_handler(settings: RunSettings, gates: dict[str, RateGate]) -> FeedbackHandler:
    policy = ScalePolicy(
        soft=settings.soft_scale, hard=settings.hard_scale, overrides=settings.policy
    )
    return FeedbackHandler(
        gates, policy, stale_after_s=settings.stale_after_s, fallback=settings.bus_fallback
    )


def _refuse_gap_conflicts(settings: RunSettings, engine: BarEngines) -> None:
    if settings.fill_gaps and settings.calendar is None:
        raise UsageError("--fill-gaps needs --calendar CODE: gaps are in-session windows")
    if settings.fill_gaps and engine.allowed_lateness_ns:
        raise UsageError(
            "--fill-gaps does not follow revised bars: drop --fill-gaps or --allowed-lateness"
        )


def _late_output(settings: RunSettings, source: TickSource, sink: BarSink) -> LateOutput | None:
    if settings.late_output is None:
        return None
    if source.kind == "bars":
        raise UsageError("--late-output keeps late trades and quotes, not input bars")
    return LateOutput(parse_late_output(settings.late_output), sink)


def _checkpointer(
    settings: RunSettings, source: TickSource, engine: BarEngines, sink: BarSink, queue: WriteQueue
) -> Checkpointer:
    extra = _checkpoint_extra(source, timeframe_for(settings))
    if engine.allowed_lateness_ns:  # retained windows are part of the state
        extra["allowed_lateness_ns"] = engine.allowed_lateness_ns
    layout = layout_of([res.label for res in engine.resolutions], engine.grace_ns, extra)
    return Checkpointer(sink, queue, source, layout, settings.checkpoint_interval_s)


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


def _bus_limits(settings: RunSettings) -> dict[str, int]:
    if is_memory_bus(settings.bus):
        return {}
    return {"max_entry_bytes": settings.bus_max_entry_bytes, "dlq_maxlen": settings.dlq_maxlen}


def _retry_policy(settings: RunSettings) -> RetryPolicy:
    if settings.write_retry_for_s is None:
        return RetryPolicy(attempts=settings.write_attempts, retry_for_s=DEFAULT_RETRY_FOR_S)
    return RetryPolicy(attempts=settings.write_attempts, retry_for_s=settings.write_retry_for_s)


def _open_retry_policy(settings: RunSettings) -> RetryPolicy:
    # A store unreachable at start is most often a wrong address: fail in seconds, unless
    # --write-retry-for was given to ask start to wait for it too.
    if settings.write_retry_for_s is not None:
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
        dwell_s=settings.dwell_s,
    )


def stop_metrics(server: Any) -> None:
    """Stop the metrics endpoint ``serve_metrics`` returned (None: there is none)."""
    if server is not None:
        server.shutdown()
        server.server_close()


def serve_metrics(port: int | None, provider: str) -> Any:
    """Reset the provider's gauges and serve Prometheus metrics on ``port`` (None: do not)."""
    metrics.RATE_SCALE.labels(provider=provider).set(1.0)
    metrics.BACKPRESSURE_LEVEL.labels(provider=provider).set(0)
    if port is None:
        return None
    try:
        server, _thread = metrics.serve_metrics(port)
    except OSError as exc:
        raise UsageError(f"cannot serve metrics on 127.0.0.1:{port}: {exc.strerror}") from None
    return server
