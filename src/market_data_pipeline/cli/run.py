"""``mdp run``: flags, config file and ``MDP_*`` variables in; progress, summary, exit code out."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import EXIT_BAD_INPUT, PipelineError
from .signals import EXIT_CODES, STOP, StopSignals

EXAMPLES = """[bold]Examples[/]

  mdp run                                            [dim]# 10 s synthetic demo into ./mdp.db[/]

  mdp run --ticks 1000000 --resolution 1m,5m --json

  mdp run --input 'data/trades-*.csv' --sink postgresql://localhost/market

  mdp run --input spy_1m.parquet --kind bars --symbol SPY --resolution 1h

  mdp run --bus redis://localhost:6379/0 --feedback-stream 'mdp:mdp.telemetry.feedback'
  [dim]# obey market-data-store's FeedbackPublisherService[/]

Every flag can also come from --config FILE (TOML or YAML, keys like on_bad_row) or from an
MDP_ variable (MDP_SINK, MDP_RESOLUTION, ...); flags win over both.
Exit codes: 0 success, 1 the run failed or lost data, 2 bad input or usage,
130/143 stopped by SIGINT/SIGTERM (open windows written, the summary says what was read).
"""

_SOURCE = "Source"
_BARS = "Bars"
_STORE = "Store and batching"
_FEEDBACK = "Backpressure feedback"
_OUTPUT = "Output"


def run_command(
    source: Annotated[
        str | None,
        typer.Option(
            help="Where ticks come from: synthetic or replay (replay is implied by --input).",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    input: Annotated[
        str | None,
        typer.Option(
            "--input",
            help="CSV or Parquet file, or a glob ('data/*.csv'), of trades, quotes or bars.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option(
            help="trades, quotes or bars; detected from the columns when omitted.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    symbol: Annotated[
        str | None,
        typer.Option(
            help="Instrument of a single-instrument file without a symbol column (e.g. SPY).",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    symbols: Annotated[
        str | None,
        typer.Option(
            help="Synthetic instruments, comma-separated (default AAPL,MSFT,NVDA,AMZN,GOOG).",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Synthetic random seed: same seed and --start, same ticks.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(
            "--rate",
            metavar="TICKS_PER_S",
            help="Synthetic target rate in ticks/s (default: as fast as possible; demo 5000).",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            help="Replay at X times the recorded pace (default: as fast as possible).",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help="Stop after this many seconds; open windows are still written.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    ticks: Annotated[
        int | None,
        typer.Option(help="Synthetic: stop after N ticks.", rich_help_panel=_SOURCE),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            help="Synthetic: event time of the first tick, ISO-8601 (default: now).",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    ts_unit: Annotated[
        str | None,
        typer.Option(
            "--ts-unit",
            help="Unit of epoch-number timestamps: auto (by magnitude), s, ms, us or ns.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    ts_format: Annotated[
        str | None,
        typer.Option(
            "--ts-format",
            metavar="FORMAT",
            help="strftime format of timestamp strings, e.g. '%m/%d/%Y' or '%Y%m%d %H:%M:%S'.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            metavar="NAME,...",
            help="Names of a header-less CSV's columns, e.g. ts,price,size.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    format_preset: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="Column layout of a known export: binance-aggtrades, binance-klines or"
            " tardis-trades.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option(
            "--tz",
            metavar="ZONE",
            help="IANA zone of naive timestamps and of 1d/1w/1mo windows, e.g. America/New_York"
            " (default UTC; with --calendar, the exchange's zone).",
            rich_help_panel=_BARS,
        ),
    ] = None,
    calendar: Annotated[
        str | None,
        typer.Option(
            "--calendar",
            metavar="CODE",
            help="Exchange calendar (XNYS, XNAS, XLON, CMES, XTKS ...): 1d bars are sessions,"
            " labelled 1d@CODE; ticks outside sessions are counted, not used.",
            rich_help_panel=_BARS,
        ),
    ] = None,
    align: Annotated[
        str | None,
        typer.Option(
            "--align",
            help="epoch (default) or session: intraday windows start at each session's open.",
            rich_help_panel=_BARS,
        ),
    ] = None,
    week_start: Annotated[
        str | None,
        typer.Option(
            "--week-start",
            metavar="DAY",
            help="First day of 1w bars: monday (default, ISO weeks), sunday ...",
            rich_help_panel=_BARS,
        ),
    ] = None,
    fill_gaps: Annotated[
        bool | None,
        typer.Option(
            "--fill-gaps/--no-fill-gaps",
            help="With --calendar: write flat bars (previous close, volume 0) for in-session"
            " windows without ticks.",
            rich_help_panel=_BARS,
        ),
    ] = None,
    on_bad_row: Annotated[
        str | None,
        typer.Option(
            "--on-bad-row",
            help="fail: stop at the first bad row, write nothing (exit 2); skip: skip and count.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    resolution: Annotated[
        str | None,
        typer.Option(
            help="Bar sizes, comma-separated: 1s, 5s, 1m (or 1min), 1h, 1d, 1w, 1mo, 1q, 1y"
            " (default 1m).",
            rich_help_panel=_BARS,
        ),
    ] = None,
    grace: Annotated[
        str | None,
        typer.Option(
            metavar="DURATION",
            help="Allowed lateness, e.g. 2s or 500ms; later ticks count as late (default 2s).",
            rich_help_panel=_BARS,
        ),
    ] = None,
    sink: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="sqlite:///path.db (default sqlite:///mdp.db) or postgresql://user@host/db.",
            rich_help_panel=_STORE,
        ),
    ] = None,
    queue_capacity: Annotated[
        int | None,
        typer.Option(
            help="Bars the write queue holds before ingest waits (default 100000).",
            rich_help_panel=_STORE,
        ),
    ] = None,
    batch_rows: Annotated[
        int | None,
        typer.Option(help="Bars per store write (default 5000).", rich_help_panel=_STORE),
    ] = None,
    batch_interval: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help="Write a partial batch after this long (default 0.5).",
            rich_help_panel=_STORE,
        ),
    ] = None,
    write_retry_for: Annotated[
        str | None,
        typer.Option(
            "--write-retry-for",
            metavar="DURATION",
            help="Keep retrying a store that is down this long, e.g. 5m (default 60s); a store "
            "that refuses writes (read-only) fails at once.",
            rich_help_panel=_STORE,
        ),
    ] = None,
    bus: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Feedback bus: memory:// (default) or redis://host:6379/0 (Core's wire format).",
            rich_help_panel=_FEEDBACK,
        ),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option(help="Redis stream namespace (default mdp).", rich_help_panel=_FEEDBACK),
    ] = None,
    group: Annotated[
        str | None,
        typer.Option(help="Redis consumer group (default pipeline).", rich_help_panel=_FEEDBACK),
    ] = None,
    feedback_stream: Annotated[
        list[str] | None,
        typer.Option(
            "--feedback-stream",
            metavar="KEY",
            help="Redis stream key to obey, repeatable; {namespace} is replaced (default "
            "{namespace}:telemetry.feedback). market-data-store publishes to "
            "'{namespace}:{namespace}.telemetry.feedback'.",
            rich_help_panel=_FEEDBACK,
        ),
    ] = None,
    coordinator: Annotated[
        str | None,
        typer.Option(
            help="Coordinator id this run's write queue reports as (default mdp-store).",
            rich_help_panel=_FEEDBACK,
        ),
    ] = None,
    soft_scale: Annotated[
        float | None,
        typer.Option(
            help="Rate scale under soft backpressure (default 0.5).", rich_help_panel=_FEEDBACK
        ),
    ] = None,
    hard_scale: Annotated[
        float | None,
        typer.Option(
            help="Rate scale under hard backpressure (default 0: paused).",
            rich_help_panel=_FEEDBACK,
        ),
    ] = None,
    stale_after: Annotated[
        float | None,
        typer.Option(
            metavar="SECONDS",
            help="A coordinator silent this long stops holding the rate down (default 10).",
            rich_help_panel=_FEEDBACK,
        ),
    ] = None,
    bus_fallback: Annotated[
        str | None,
        typer.Option(
            help="While the bus is unreachable: keep the last scale (default), ok or hard.",
            rich_help_panel=_FEEDBACK,
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            metavar="PORT",
            help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics.",
            rich_help_panel=_OUTPUT,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="Settings file (TOML or YAML); flags and MDP_ variables override it.",
            rich_help_panel=_OUTPUT,
        ),
    ] = None,
    json_output: Annotated[
        bool | None,
        typer.Option(
            "--json/--no-json",
            help="Print the summary as JSON on stdout (no progress).",
            rich_help_panel=_OUTPUT,
        ),
    ] = None,
) -> None:
    """Build bars from a synthetic or replayed stream and write them to a store."""
    flags: dict[str, Any] = {k: v for k, v in locals().items() if k != "config"}
    flags["json"] = flags.pop("json_output")
    flags["feedback_stream"] = tuple(feedback_stream) if feedback_stream else None
    flags["format"] = flags.pop("format_preset")
    # Signals are requests from here on: settings, imports, the run and its summary all finish.
    with STOP.held() as signals:
        code = _run(config, flags, signals)
    raise typer.Exit(code)


def _run(config: Path | None, flags: dict[str, Any], signals: StopSignals) -> int:
    from ..config import load_settings
    from . import output

    try:
        settings = load_settings(config_file=config, environ=os.environ, flags=flags)
    except PipelineError as exc:
        output.error_line(str(exc))
        return EXIT_BAD_INPUT
    view = output.RunView(json_mode=settings.json_output, interactive=sys.stderr.isatty())
    report = asyncio.run(_execute(settings, view, signals))
    view.summary(report)
    if report.exit_code == 0 and report.stopped_by in EXIT_CODES:
        return EXIT_CODES[report.stopped_by]
    return int(report.exit_code)


async def _execute(settings: Any, view: Any, signals: StopSignals) -> Any:
    # Imported only now: loading polars, pyarrow and Core takes a while; a signal meanwhile is
    # recorded and stops the pipeline as soon as it starts.
    from ..runtime import Pipeline, execute

    def started(pipeline: Pipeline) -> None:
        signals.forward_to(asyncio.get_running_loop(), pipeline.request_stop)
        view.start(pipeline)

    try:
        return await execute(settings, on_start=started)
    finally:
        signals.detach()
        view.stop()
