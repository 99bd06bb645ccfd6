"""The ``mdp`` command: ``run``, ``bars``, ``publish``, ``serve``, ``feedback`` and ``contracts``.

Sub-commands import their heavy dependencies (Core, polars, drivers) only when they run, so
``mdp --help`` answers at once. The ``contracts`` group (the market-data-contracts toolkit) is
built the first time the CLI needs it, so a run never imports it.
"""

from __future__ import annotations

import typer
from typer._click import Command, Context
from typer.core import TyperGroup

from .. import __version__
from . import startup
from .bars import bars_command
from .feedback import feedback_app
from .publish import EXAMPLES as PUBLISH_EXAMPLES
from .publish import publish_command
from .run import EXAMPLES, run_command
from .serve import EXAMPLES as SERVE_EXAMPLES
from .serve import serve_command
from .signals import release_for

CONTRACTS = "contracts"


class _MdpGroup(TyperGroup):
    """The root group: ``contracts`` is mounted when a look-up needs it, last like the others."""

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        if cmd_name == CONTRACTS:
            self._mount_contracts()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: Context) -> list[str]:
        self._mount_contracts()
        return super().list_commands(ctx)

    def resolve_command(
        self, ctx: Context, args: list[str]
    ) -> tuple[str | None, Command | None, list[str]]:
        if args and args[0] not in self.commands:
            self._mount_contracts()  # a mistyped name is matched against every command
        return super().resolve_command(ctx, args)

    def _mount_contracts(self) -> None:
        if CONTRACTS not in self.commands:
            from market_data_contracts.cli import contracts_app

            self.add_command(typer.main.get_command(contracts_app), CONTRACTS)


app = typer.Typer(
    name="mdp",
    cls=_MdpGroup,
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
    if ctx.invoked_subcommand != "run":
        startup.release()  # ``run`` releases once its pipeline has started


def main() -> None:
    """Entry point of the ``mdp`` console script."""
    app()
