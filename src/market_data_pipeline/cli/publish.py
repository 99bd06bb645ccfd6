"""``mdp publish``: load a replay file or synthetic ticks into a JetStream stream."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Annotated, Any, Literal

import typer

from ..errors import EXIT_BAD_INPUT, PipelineError

EXAMPLES = """[bold]Examples[/]

  mdp publish --stream TICKS --ticks 1000000          [dim]# synthetic trades, 5 symbols[/]

  mdp publish --stream TICKS --input 'data/trades-*.csv' --body json

  mdp publish --stream TICKS --ticks 100000 --partitions 4   [dim]# ticks.<0..3>.<symbol>[/]

The stream is created on PREFIX.> when missing. Subjects are PREFIX.SYMBOL (PREFIX.P.SYMBOL with
--partitions N, P = NATS's partition(N) hash of the symbol). Exit codes: 0 every tick published
and acknowledged by JetStream, 1 the server failed, 2 bad input or usage.
"""

_TARGET = "Target"
_INPUT = "Ticks (as for mdp run)"


def publish_command(
    ctx: typer.Context,
    nats_url: Annotated[
        str,
        typer.Option("--nats-url", metavar="URL", help="NATS server.", rich_help_panel=_TARGET),
    ] = "nats://127.0.0.1:4222",
    stream: Annotated[
        str,
        typer.Option(
            "--stream", metavar="NAME", help="Stream to publish to.", rich_help_panel=_TARGET
        ),
    ] = "TICKS",
    subject_prefix: Annotated[
        str,
        typer.Option(
            "--subject-prefix",
            metavar="PREFIX",
            help="Subjects are PREFIX.SYMBOL.",
            rich_help_panel=_TARGET,
        ),
    ] = "ticks",
    body: Annotated[
        Literal["arrow", "json", "pulse"],
        typer.Option(
            "--body",
            help="arrow: Arrow IPC batches; json: Core Trade JSON (arrays when --batch-ticks"
            " > 1); pulse: Core's Pulse envelope of one Trade.",
            rich_help_panel=_TARGET,
        ),
    ] = "arrow",
    batch_ticks: Annotated[
        int,
        typer.Option(
            "--batch-ticks", metavar="N", help="Ticks per message.", rich_help_panel=_TARGET
        ),
    ] = 1_000,
    partitions: Annotated[
        int | None,
        typer.Option(
            "--partitions",
            metavar="N",
            help="Publish to PREFIX.P.SYMBOL, P in 0..N-1, for N partitioned workers.",
            rich_help_panel=_TARGET,
        ),
    ] = None,
    input: Annotated[
        str | None,
        typer.Option(
            "--input",
            "-i",
            metavar="PATH",
            help="CSV or Parquet trades or quotes (a quoted glob works).",
            rich_help_panel=_INPUT,
        ),
    ] = None,
    kind: Annotated[
        Literal["trades", "quotes"] | None,
        typer.Option("--kind", "-k", help="What the rows are.", rich_help_panel=_INPUT),
    ] = None,
    symbol: Annotated[
        str | None,
        typer.Option(
            "--symbol",
            "-s",
            metavar="SYMBOL",
            help="Instrument of a file without a symbol column.",
            rich_help_panel=_INPUT,
        ),
    ] = None,
    symbols: Annotated[
        str | None,
        typer.Option(
            metavar="A,B,...",
            help="Synthetic instruments. \\[default: AAPL,MSFT,NVDA,AMZN,GOOG]",
            rich_help_panel=_INPUT,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(metavar="N", help="Synthetic seed. \\[default: 0]", rich_help_panel=_INPUT),
    ] = None,
    ticks: Annotated[
        int | None,
        typer.Option(
            "--ticks", "-n", metavar="N", help="Synthetic ticks to publish.", rich_help_panel=_INPUT
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            metavar="ISO_TIME",
            help="Synthetic: event time of the first tick. \\[default: now]",
            rich_help_panel=_INPUT,
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option("--json/--no-json", "-j", help="Print the summary as JSON on stdout."),
    ] = False,
) -> None:
    """Publish ticks from a file or the synthetic generator to a JetStream stream."""
    if ctx.args:
        from . import output
        from .precheck import extra_arguments_error

        output.error_line(str(extra_arguments_error("mdp publish", ctx.args)))
        raise typer.Exit(EXIT_BAD_INPUT)
    flags = {
        "input": input,
        "kind": kind,
        "symbol": symbol,
        "symbols": symbols,
        "seed": seed,
        "ticks": ticks,
        "start": start,
    }
    target = {
        "url": nats_url,
        "stream": stream,
        "prefix": subject_prefix,
        "body": body,
        "batch_ticks": batch_ticks,
        "partitions": partitions,
    }
    raise typer.Exit(_publish(flags, target, json_output))


def _publish(flags: dict[str, Any], target: dict[str, Any], json_output: bool) -> int:
    from . import output

    try:
        if flags["input"] is None and flags["ticks"] is None:
            from ..errors import UsageError

            raise UsageError("mdp publish needs --input PATH or --ticks N (synthetic)")
        from ..config import load_settings
        from ..extras import require_extra

        require_extra("nats", "mdp publish")
        settings = load_settings(
            config_file=None, environ=os.environ, flags={k: v for k, v in flags.items() if v}
        )
        import asyncio

        from ..build import build_source
        from ..sources.nats_publish import publish_source

        source = build_source(settings)
        started = time.monotonic()
        report = asyncio.run(publish_source(source.batches(), **target))
    except PipelineError as exc:
        output.error_line(str(exc))
        return exc.exit_code or EXIT_BAD_INPUT
    elapsed_s = time.monotonic() - started
    summary = {**vars(report), "elapsed_s": round(elapsed_s, 3)}
    if json_output:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        rate = report.ticks / elapsed_s if elapsed_s > 0 else 0.0
        print(
            f"mdp publish: ok - {report.ticks:,} ticks in {report.messages:,} messages to "
            f"stream {report.stream} ({report.subjects}), {report.symbols} symbols, "
            f"{elapsed_s:.2f} s ({rate:,.0f} ticks/s); stream seq "
            f"{report.first_seq}..{report.last_seq}"
        )
    return 0
