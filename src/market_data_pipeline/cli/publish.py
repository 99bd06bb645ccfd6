"""``mdp publish``: load a replay file or synthetic ticks into a JetStream stream."""

from __future__ import annotations

import inspect
import json
import os
import sys
import time
from typing import Annotated, Any, Literal

import typer

from ..errors import EXIT_BAD_INPUT, PipelineError
from .options import context_parameter, given_flags, parameters, with_parameters
from .signals import EXIT_CODES, STOP

EXAMPLES = """[bold]Examples[/]

  mdp publish --stream TICKS --ticks 1000000          [dim]# synthetic trades, 5 symbols[/]

  mdp publish --stream TICKS --input 'data/trades-*.csv' --body json

  mdp publish --stream TICKS --ticks 100000 --partitions 4   [dim]# ticks.<0..3>.<symbol>[/]

The stream is created on PREFIX.> when missing. Subjects are PREFIX.SYMBOL (PREFIX.P.SYMBOL with
--partitions N, P = NATS's partition(N) hash of the symbol). Exit codes: 0 every tick published
and acknowledged by JetStream, 1 the server failed, 2 bad input or usage, 130/143 stopped by
Ctrl-C/SIGTERM (no further message sent; every one sent was acknowledged, the summary counts them).
"""

_TARGET = "Target"
_INPUT = "Ticks (as for mdp run)"


_TICKS = ("input", "kind", "symbol", "symbols", "seed", "ticks", "start")


def publish_command(
    ctx: typer.Context,
    nats_url: str,
    target_stream: str,
    subject_prefix: str,
    body: str,
    batch_ticks: int,
    partitions: int | None,
    json: bool,
    **ticks: Any,
) -> None:
    """Publish ticks from a file or the synthetic generator to a JetStream stream."""
    if ctx.args:
        from . import output
        from .precheck import extra_arguments_error

        output.error_line(str(extra_arguments_error("mdp publish", ctx.args)))
        raise typer.Exit(EXIT_BAD_INPUT)
    flags = {key: value for key, value in given_flags(ctx).items() if key in _TICKS}
    target = {
        "url": nats_url,
        "stream": target_stream,
        "prefix": subject_prefix,
        "body": body,
        "batch_ticks": batch_ticks,
        "partitions": partitions,
    }
    # Signals are requests from here on: the publish ends before its next frame (see _publish).
    with STOP.held():
        code = _publish(flags, target, json)
    raise typer.Exit(code)


def _target_option(name: str, type_: Any, default: Any, *decls: str, **kw: Any) -> Any:
    option = typer.Option(*decls, rich_help_panel=_TARGET, **kw)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[type_, option], default=default
    )


with_parameters(
    publish_command,
    [
        context_parameter(),
        *parameters(["nats_url"], panel=_TARGET),
        _target_option(
            "target_stream", str, "TICKS", "--stream", metavar="NAME", help="Stream to publish to."
        ),
        _target_option(
            "subject_prefix",
            str,
            "ticks",
            "--subject-prefix",
            metavar="PREFIX",
            help="Subjects are PREFIX.SYMBOL.",
        ),
        _target_option(
            "body",
            Literal["arrow", "json", "pulse"],
            "arrow",
            "--body",
            help="arrow: Arrow IPC batches; json: Core Trade JSON (arrays when --batch-ticks"
            " > 1); pulse: Core's Pulse envelope of one Trade.",
        ),
        _target_option(
            "batch_ticks", int, 1_000, "--batch-ticks", metavar="N", help="Ticks per message."
        ),
        _target_option(
            "partitions",
            int | None,
            None,
            "--partitions",
            metavar="N",
            help="Publish to PREFIX.P.SYMBOL, P in 0..N-1, for N partitioned workers.",
        ),
        *parameters(_TICKS, panel=_INPUT),
        *parameters(["json"], panel=None),
    ],
)


def _publish(flags: dict[str, Any], target: dict[str, Any], json_output: bool) -> int:
    from . import output

    try:
        from ..errors import UsageError

        if "input" in flags:
            flags["input"] = tuple(flags["input"])
        elif "ticks" not in flags:
            raise UsageError("mdp publish needs --input PATH or --ticks N (synthetic)")
        if flags.get("kind") == "bars":
            raise UsageError("mdp publish publishes trades or quotes: --kind trades or quotes")
        from ..config import load_settings
        from ..extras import require_extra

        require_extra("nats", "mdp publish")
        settings = load_settings(config_file=None, environ=os.environ, flags=flags)
        from .. import eventloop
        from ..build import build_source
        from ..publish import publish_source

        source = build_source(settings)
        STOP.reassert()  # polars hooked SIGINT on import: put ours back in front
        started = time.monotonic()
        publishing = publish_source(source.batches(), stop=lambda: STOP.received, **target)
        report = eventloop.run(publishing, source="nats")  # uvloop: a NATS client per message
    except PipelineError as exc:
        output.error_line(str(exc))
        return exc.exit_code or EXIT_BAD_INPUT
    elapsed_s = time.monotonic() - started
    code = EXIT_CODES[report.stopped_by] if report.stopped_by else 0
    summary = {**vars(report), "elapsed_s": round(elapsed_s, 3), "exit_code": code}
    if json_output:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        rate = report.ticks / elapsed_s if elapsed_s > 0 else 0.0
        status = f"stopped by {report.stopped_by}" if report.stopped_by else "ok"
        print(
            f"mdp publish: {status} - {report.ticks:,} ticks in {report.messages:,} messages to "
            f"stream {report.stream} ({report.subjects}), {report.symbols} symbols, "
            f"{elapsed_s:.2f} s ({rate:,.0f} ticks/s); stream seq "
            f"{report.first_seq}..{report.last_seq}, every message acknowledged"
        )
    return code
