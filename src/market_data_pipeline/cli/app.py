"""The ``mdp`` command: ``run``, ``bars``, ``publish``, ``serve``, ``feedback`` and ``contracts``.

Sub-commands import their heavy dependencies (Core, polars, drivers) only when they run, so
``mdp --help`` answers at once.
"""

from __future__ import annotations

import typer

from market_data_contracts.cli import contracts_app

from .. import __version__
from .bars import bars_command
from .feedback import feedback_app
from .publish import EXAMPLES as PUBLISH_EXAMPLES
from .publish import publish_command
from .run import EXAMPLES, run_command
from .serve import EXAMPLES as SERVE_EXAMPLES
from .serve import serve_command
from .signals import release_for

app = typer.Typer(
    name="mdp",
    help=(
        "Market-data pipeline: ticks to event-time OHLCV bars in SQLite or PostgreSQL, "
        "slowed down by the store's backpressure.\n\n"
        "Start with `mdp run` (a 10 s synthetic demo into ./mdp.db)."
    ),
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
app.command(
    "run",
    help="Build bars from a synthetic or replayed stream and write them to a store.",
    epilog=EXAMPLES,
    no_args_is_help=False,
    # Leftover arguments get an error that names their likely cause (an unquoted glob).
    context_settings={"allow_extra_args": True},
)(run_command)
app.command("bars", help="Show or export the bars in a store: table, CSV, Parquet or JSON.")(
    bars_command
)
app.command(
    "publish",
    help="Publish ticks from a file or the synthetic generator to a JetStream stream.",
    epilog=PUBLISH_EXAMPLES,
    context_settings={"allow_extra_args": True},
)(publish_command)
app.command(
    "serve",
    help="Serve runs over HTTP: a job API, health probes, metrics and a page to watch them.",
    epilog=SERVE_EXAMPLES,
)(serve_command)
app.add_typer(feedback_app, name="feedback")
app.add_typer(contracts_app, name="contracts")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mdp {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Market-data pipeline."""
    release_for(ctx.invoked_subcommand)


def main() -> None:
    """Entry point of the ``mdp`` console script."""
    app()
