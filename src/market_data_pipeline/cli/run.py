"""``mdp run``: flags, config file and ``MDP_*`` variables in; progress, summary, exit code out."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from ..defaults import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_DLQ_MAXLEN,
    DEFAULT_MAX_ENTRY_BYTES,
    DEFAULT_QUEUE_CAPACITY,
    DEFAULT_SINK,
)
from ..errors import EXIT_BAD_INPUT, PipelineError
from .signals import STOP, StopSignals

if TYPE_CHECKING:
    from ..config import RunSettings
    from ..report import RunReport
    from .output import RunView

EXAMPLES = """[bold]Examples[/]

  mdp run                                            [dim]# 10 s synthetic demo into ./mdp.db[/]

  mdp run -n 1000000 -r 1m,5m --json

  mdp run --input 'data/trades-*.csv' --sink postgresql://localhost/market

  mdp run -i day1.parquet -i day2.parquet -i archive/ --on-late fail
  [dim]# several files and directories, merged in event time[/]

  mdp run -i spy_1m.parquet --kind bars -s SPY -r 1h

  mdp run -i 'data/*.parquet' --sink postgresql://localhost/market --resume
  [dim]# checkpoints as it goes; after a crash the same command continues[/]

  mdp run --bus redis://localhost:6379/0 --feedback-stream 'mdp:mdp.telemetry.feedback'
  [dim]# obey market-data-store's FeedbackPublisherService[/]

  mdp run --source nats --stream TICKS --durable worker-1 --idle-timeout 5
  [dim]# consume ticks published with `mdp publish --stream TICKS`[/]

  mdp run -c run.toml                                [dim]# resolution = ["1m", "5m"][/]

Every flag can also come from --config FILE (TOML or YAML, keys like on_bad_row) or from an
MDP_ variable (MDP_SINK, MDP_RESOLUTION, ...); flags win over both.
Ctrl-C stops at the next safe point: open windows are flushed and written before exit.
Exit codes: 0 success, 1 the run failed or lost data, 2 bad input or usage,
130/143 stopped by SIGINT/SIGTERM (open windows written; a replay says it is partial: rows
not read and the last event time committed).
"""

_SOURCE = "Source"
_BARS = "Bars"
_STORE = "Store and batching"
_FEEDBACK = "Backpressure feedback"
_OUTPUT = "Output"
_NATS = "NATS JetStream source"
SWITCH_INTERVAL_S = 0.001  # seconds; see _run


# Defaults shown in --help are the settings model's (tests/unit/cli/test_conventions.py keeps them
# equal); a value counts as given only when it came from the command line, so a config file or an
# MDP_ variable is never overridden by a flag's default.
def run_command(
    ctx: typer.Context,
    source: Annotated[
        str | None,
        typer.Option(
            metavar="SOURCE",
            help="Where ticks come from: synthetic, replay (implied by --input), nats (a"
            " JetStream stream, see --stream) or provider:NAME (a Core MarketDataProvider,"
            " e.g. provider:ibkr). \\[default: synthetic]",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    input: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            "-i",
            metavar="PATH",
            help="CSV or Parquet file, quoted glob ('data/*.csv') or directory of trades, quotes"
            " or bars; repeat to add more. All are merged into one stream in event time.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    kind: Annotated[
        Literal["trades", "quotes", "bars"] | None,
        typer.Option(
            "--kind",
            "-k",
            help="What the rows are; detected from the columns when omitted.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    symbol: Annotated[
        str | None,
        typer.Option(
            "--symbol",
            "-s",
            metavar="SYMBOL",
            help="Instrument of a file without a symbol column, or the one synthetic instrument.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    symbols: Annotated[
        str,
        typer.Option(
            metavar="A,B,...",
            help="Synthetic instruments, comma-separated.",
            rich_help_panel=_SOURCE,
        ),
    ] = "AAPL,MSFT,NVDA,AMZN,GOOG",
    seed: Annotated[
        int,
        typer.Option(
            metavar="N",
            help="Synthetic random seed: same seed and --start, same ticks.",
            rich_help_panel=_SOURCE,
        ),
    ] = 0,
    rate: Annotated[
        float | None,
        typer.Option(
            metavar="TICKS_PER_S",
            help="Synthetic target rate in ticks/s; unset: as fast as possible (demo: 5000).",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(
            metavar="X",
            help="Replay at X times the recorded pace; unset: as fast as possible.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(
            "--duration",
            "-d",
            metavar="SECONDS",
            help="Stop after this many seconds; open windows are still written.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    ticks: Annotated[
        int | None,
        typer.Option(
            "--ticks",
            "-n",
            metavar="N",
            help="Synthetic: stop after N ticks.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            metavar="ISO_TIME",
            help="Synthetic: event time of the first tick, e.g. 2024-01-02T09:30:00Z; unset: now.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    ts_unit: Annotated[
        Literal["auto", "s", "ms", "us", "ns"],
        typer.Option(
            "--ts-unit",
            help="Unit of epoch-number timestamps (auto: by magnitude).",
            rich_help_panel=_SOURCE,
        ),
    ] = "auto",
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
        Literal["binance-aggtrades", "binance-klines", "tardis-trades"] | None,
        typer.Option(
            "--format",
            help="Column layout of a known export.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    on_bad_row: Annotated[
        Literal["fail", "skip"],
        typer.Option(
            "--on-bad-row",
            help="fail: stop at the first bad row, write nothing (exit 2); skip: skip and count.",
            rich_help_panel=_SOURCE,
        ),
    ] = "fail",
    on_duplicate: Annotated[
        Literal["fail", "skip"],
        typer.Option(
            "--on-duplicate",
            help="A trade or quote that another input file repeats exactly: fail names both"
            " files and writes nothing (exit 2); skip drops and counts it.",
            rich_help_panel=_SOURCE,
        ),
    ] = "fail",
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--no-resume",
            help="Replay with checkpoints (bars, open windows and the input position committed"
            " every --checkpoint-interval) and continue after the last one of the same input.",
            rich_help_panel=_SOURCE,
        ),
    ] = False,
    on_late: Annotated[
        Literal["count", "fail"],
        typer.Option(
            "--on-late",
            help="Ticks that come after their window closed (beyond --grace): count them and"
            " warn, or fail the run and write nothing (exit 1).",
            rich_help_panel=_BARS,
        ),
    ] = "count",
    resolution: Annotated[
        str | None,
        typer.Option(
            "--resolution",
            "-r",
            metavar="SIZES",
            help="Bar sizes, comma-separated: 1s, 5s, 1m (or 1min), 1h, 1d, 1w, 1mo, 1q, 1y."
            " \\[default: 1m; demo: 1s,1m]",
            rich_help_panel=_BARS,
        ),
    ] = None,
    grace: Annotated[
        str,
        typer.Option(
            "--grace",
            "-g",
            metavar="DURATION",
            help="How long a window waits for ticks after its end, e.g. 2s or 500ms; later"
            " ticks are late (see --allowed-lateness).",
            rich_help_panel=_BARS,
        ),
    ] = "2s",
    allowed_lateness: Annotated[
        str,
        typer.Option(
            "--allowed-lateness",
            metavar="DURATION",
            help="Keep closed windows this long past their close (on the symbol's watermark):"
            " a late tick within it revises its bar, written again with revision + 1.",
            rich_help_panel=_BARS,
        ),
    ] = "0s",
    late_output: Annotated[
        str | None,
        typer.Option(
            "--late-output",
            metavar="URL",
            help="Keep ticks later than that with the window they missed: late.parquet,"
            " late.csv, or table:NAME in the store (replay a file with mdp run --input).",
            rich_help_panel=_BARS,
        ),
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option(
            "--tz",
            metavar="ZONE",
            help="IANA zone of naive timestamps and of 1d/1w/1mo windows, e.g. America/New_York."
            " \\[default: UTC; with --calendar, 1w and longer follow the exchange's zone]",
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
        Literal["epoch", "session"],
        typer.Option(
            "--align",
            help="session: intraday windows start at each session's open.",
            rich_help_panel=_BARS,
        ),
    ] = "epoch",
    week_start: Annotated[
        str,
        typer.Option(
            "--week-start",
            metavar="DAY",
            help="First day of 1w bars: monday (ISO weeks), sunday ...",
            rich_help_panel=_BARS,
        ),
    ] = "monday",
    fill_gaps: Annotated[
        bool,
        typer.Option(
            "--fill-gaps/--no-fill-gaps",
            help="With --calendar: write flat bars (previous close, volume 0) for in-session"
            " windows without ticks.",
            rich_help_panel=_BARS,
        ),
    ] = False,
    sink: Annotated[
        str,
        typer.Option(
            "--sink",
            "-S",
            metavar="URL",
            help="Store: sqlite:///path.db or postgresql://user@host/db.",
            rich_help_panel=_STORE,
        ),
    ] = DEFAULT_SINK,
    table: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Table the bars go to, created if missing; schema.table in PostgreSQL."
            " \\[default: bars]",
            rich_help_panel=_STORE,
        ),
    ] = None,
    queue_capacity: Annotated[
        int,
        typer.Option(
            metavar="BARS",
            help="Bars the write queue holds before ingest waits.",
            rich_help_panel=_STORE,
        ),
    ] = DEFAULT_QUEUE_CAPACITY,
    batch_rows: Annotated[
        int,
        typer.Option(metavar="BARS", help="Bars per store write.", rich_help_panel=_STORE),
    ] = DEFAULT_BATCH_ROWS,
    batch_interval: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="Write a partial batch after this long.",
            rich_help_panel=_STORE,
        ),
    ] = 0.5,
    write_retry_for: Annotated[
        str | None,
        typer.Option(
            "--write-retry-for",
            metavar="DURATION",
            help="Keep retrying a store that is down this long, e.g. 5m; given, start waits"
            " for it too. Errors no retry fixes (a read-only store, a table of another shape)"
            " fail at once. \\[default: 60s, and a store unreachable at start fails in 3 s]",
            rich_help_panel=_STORE,
        ),
    ] = None,
    write_attempts: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="At most N tries per store write; unset: as many as --write-retry-for allows.",
            rich_help_panel=_STORE,
        ),
    ] = None,
    bus: Annotated[
        str,
        typer.Option(
            "--bus",
            "-b",
            metavar="URL",
            help="Feedback bus: memory:// (in-process) or redis://host:6379/0 (Core's format).",
            rich_help_panel=_FEEDBACK,
        ),
    ] = "memory://",
    namespace: Annotated[
        str,
        typer.Option(metavar="NAME", help="Redis stream namespace.", rich_help_panel=_FEEDBACK),
    ] = "mdp",
    group: Annotated[
        str,
        typer.Option(metavar="NAME", help="Redis consumer group.", rich_help_panel=_FEEDBACK),
    ] = "pipeline",
    feedback_stream: Annotated[
        list[str] | None,
        typer.Option(
            "--feedback-stream",
            metavar="KEY",
            help="Redis stream key to obey, repeatable; {namespace} is replaced. market-data-store"
            " publishes to '{namespace}:{namespace}.telemetry.feedback'."
            " \\[default: {namespace}:telemetry.feedback]",
            rich_help_panel=_FEEDBACK,
        ),
    ] = None,
    coordinator: Annotated[
        str,
        typer.Option(
            "--coordinator",
            "-I",
            metavar="ID",
            help="Coordinator id this run's write queue reports as.",
            rich_help_panel=_FEEDBACK,
        ),
    ] = "mdp-store",
    soft_scale: Annotated[
        float,
        typer.Option(
            metavar="0..1", help="Rate scale under soft backpressure.", rich_help_panel=_FEEDBACK
        ),
    ] = 0.5,
    hard_scale: Annotated[
        float,
        typer.Option(
            metavar="0..1",
            help="Rate scale under hard backpressure (0: paused).",
            rich_help_panel=_FEEDBACK,
        ),
    ] = 0.0,
    policy: Annotated[
        str | None,
        typer.Option(
            metavar="JSON",
            help='Scales per provider, e.g. \'{"replay": {"soft": 0.8, "hard": 0.1}}\'.',
            rich_help_panel=_FEEDBACK,
        ),
    ] = None,
    soft_enter: Annotated[
        float,
        typer.Option(
            metavar="FILL",
            help="Write-queue fill (0..1) at which this run reports soft.",
            rich_help_panel=_FEEDBACK,
        ),
    ] = 0.70,
    soft_exit: Annotated[
        float,
        typer.Option(
            metavar="FILL", help="Fill below which soft returns to ok.", rich_help_panel=_FEEDBACK
        ),
    ] = 0.50,
    hard_enter: Annotated[
        float,
        typer.Option(
            metavar="FILL", help="Fill at which this run reports hard.", rich_help_panel=_FEEDBACK
        ),
    ] = 0.90,
    hard_exit: Annotated[
        float,
        typer.Option(
            metavar="FILL", help="Fill below which hard returns to soft.", rich_help_panel=_FEEDBACK
        ),
    ] = 0.75,
    dwell: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="A level must hold this long before it is reported (no flapping).",
            rich_help_panel=_FEEDBACK,
        ),
    ] = 0.25,
    stale_after: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="A coordinator silent this long stops holding the rate down.",
            rich_help_panel=_FEEDBACK,
        ),
    ] = 10.0,
    bus_fallback: Annotated[
        Literal["keep", "ok", "hard"],
        typer.Option(
            help="While the bus is unreachable: keep the last scale, or act as ok or hard.",
            rich_help_panel=_FEEDBACK,
        ),
    ] = "keep",
    bus_max_entry_bytes: Annotated[
        int,
        typer.Option(
            metavar="BYTES",
            help="Bus entries bigger than this go to the DLQ unread.",
            rich_help_panel=_FEEDBACK,
        ),
    ] = DEFAULT_MAX_ENTRY_BYTES,
    dlq_maxlen: Annotated[
        int,
        typer.Option(
            "--dlq-maxlen",
            metavar="ENTRIES",
            help="Keep about this many dead letters, oldest trimmed first.",
            rich_help_panel=_FEEDBACK,
        ),
    ] = DEFAULT_DLQ_MAXLEN,
    nats_url: Annotated[
        str,
        typer.Option(
            "--nats-url",
            metavar="URL",
            help="NATS server of --source nats (also `nats://user:pass@host:4222`); a"
            " cluster's servers comma-separated.",
            rich_help_panel=_NATS,
        ),
    ] = "nats://127.0.0.1:4222",
    stream: Annotated[
        str | None,
        typer.Option(
            "--stream",
            metavar="NAME",
            help="JetStream stream to consume (create and fill it with `mdp publish`).",
            rich_help_panel=_NATS,
        ),
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option(
            "--subject",
            metavar="FILTER",
            help="Only these subjects, e.g. 'ticks.>' or one partition 'ticks.2.>'."
            " \\[default: every subject of the stream]",
            rich_help_panel=_NATS,
        ),
    ] = None,
    durable: Annotated[
        str,
        typer.Option(
            "--durable",
            metavar="NAME",
            help="Durable consumer name; also names the checkpoint in the store (one per worker).",
            rich_help_panel=_NATS,
        ),
    ] = "mdp",
    idle_timeout: Annotated[
        float | None,
        typer.Option(
            "--idle-timeout",
            metavar="SECONDS",
            help="End the run after this long without a message (catch-up jobs, tests).",
            rich_help_panel=_NATS,
        ),
    ] = None,
    fetch_batch: Annotated[
        int,
        typer.Option(
            "--fetch-batch",
            metavar="N",
            help=(
                "Most messages per JetStream fetch; fewer when they are large (a fetch holds"
                " about 48 MiB at most). Example: --fetch-batch 256."
            ),
            rich_help_panel=_NATS,
        ),
    ] = 1_024,
    provider_option: Annotated[
        list[str] | None,
        typer.Option(
            "--provider-option",
            metavar="KEY=VALUE",
            help="Option of --source provider:NAME, repeatable, e.g. host=127.0.0.1 port=4002.",
            rich_help_panel=_SOURCE,
        ),
    ] = None,
    checkpoint_interval: Annotated[
        float,
        typer.Option(
            "--checkpoint-interval",
            metavar="SECONDS",
            help="Commit bars, open windows and the stream position (then ack) at least this"
            " often (a live stream commits as soon as a window closes); also a replay's with"
            " --resume.",
            rich_help_panel=_NATS,
        ),
    ] = 1.0,
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
            "--config",
            "-c",
            metavar="FILE",
            help="Settings file (TOML or YAML); MDP_ variables and flags override it.",
            rich_help_panel=_OUTPUT,
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json/--no-json",
            "-j",
            help="Print the summary as JSON on stdout (no progress).",
            rich_help_panel=_OUTPUT,
        ),
    ] = False,
) -> None:
    """Build bars from a synthetic or replayed stream and write them to a store."""
    flags = given_flags(ctx)
    flags.pop("config", None)
    renames = {"json_output": "json", "format_preset": "format"}
    flags = {renames.get(name, name): value for name, value in flags.items()}
    if ctx.args:
        from .precheck import extra_arguments_error

        raise typer.Exit(_failed_before_start(flags, extra_arguments_error("mdp run", ctx.args)))
    for name in ("feedback_stream", "input"):
        if name in flags:
            flags[name] = tuple(flags[name])
    # Signals are requests from here on: settings, imports, the run and its summary all finish.
    with STOP.held() as signals:
        code = _run(config, flags, signals)
    raise typer.Exit(code)


def given_flags(ctx: typer.Context) -> dict[str, Any]:
    """Return the options typed on the command line (defaults left out), by parameter name."""
    return {
        name: value
        for name, value in ctx.params.items()
        if _source_name(ctx, name) == "COMMANDLINE"
    }


def _source_name(ctx: typer.Context, name: str) -> str:
    # By name: typer releases differ on which click module defines ParameterSource.
    source = ctx.get_parameter_source(name)
    return source.name if source is not None else ""


def _run(config: Path | None, flags: dict[str, Any], signals: StopSignals) -> int:
    from . import output
    from .precheck import precheck_run

    try:
        # URLs and files first, at stdlib cost; only a run that can start imports the rest.
        precheck_run(config, os.environ, flags)
        from ..config import load_settings

        settings = load_settings(config_file=config, environ=os.environ, flags=flags)
    except PipelineError as exc:
        return _failed_before_start(flags, exc)
    import asyncio

    # The bar engine and decoding run in worker threads beside the event loop, whose callers
    # hand Python's lock back and forth per library call. At CPython's default switch interval
    # (5 ms) each hand-back waited that long while the loop was busy (a NATS fetch): the
    # command's process is ours to tune, and 1 ms made a NATS worker about a tenth faster.
    sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL_S))
    view = output.RunView(json_mode=settings.json_output, interactive=sys.stderr.isatty())
    report = asyncio.run(_execute(settings, view, signals))
    view.summary(report)
    return report.exit_code  # a signal's 130/143 included: the report and the process agree


def _failed_before_start(flags: dict[str, Any], exc: PipelineError) -> int:
    """Report a run that could not start, as text or (``--json``) as the one report shape."""
    from ..report import failed_before_start
    from . import output
    from .precheck import raw_setting

    json_mode = str(raw_setting("json", flags, os.environ) or "").lower() in _TRUE
    sink = str(raw_setting("sink", flags, os.environ) or DEFAULT_SINK)
    output.RunView(json_mode=json_mode, interactive=False).summary(failed_before_start(sink, exc))
    return exc.exit_code or EXIT_BAD_INPUT


_TRUE = ("1", "true", "yes", "on")


async def _execute(settings: RunSettings, view: RunView, signals: StopSignals) -> RunReport:
    # Imported only now: loading polars, pyarrow and Core takes a while; a signal meanwhile is
    # recorded and stops the pipeline as soon as it starts.
    import asyncio

    from ..runtime import Pipeline, execute

    signals.reassert()  # polars hooked SIGINT on import: no query may turn it into an exception

    def started(pipeline: Pipeline) -> None:
        signals.reassert()  # and so may a store driver or a source's client, loaded since
        signals.forward_to(asyncio.get_running_loop(), pipeline.request_stop)
        view.start(pipeline)

    try:
        return await execute(settings, on_start=started)
    finally:
        signals.detach()
        view.stop()
