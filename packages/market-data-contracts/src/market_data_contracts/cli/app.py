"""The ``contracts`` command group: ``mdp-contracts ...`` alone, ``mdp contracts ...`` mounted.

The commands that run the suite (``commands``) and those that read verification records
(``records``) are registered here, so neither module imports the other.
"""

from __future__ import annotations

import typer

from . import commands, records

contracts_app = typer.Typer(
    name="contracts",
    help="Prove this project fits a Core release: suite, matrix, surface, diff, dispatch.",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
contracts_app.command("run")(commands.run_command)
contracts_app.command("matrix")(commands.matrix_command)
contracts_app.command("surface")(commands.surface_command)
contracts_app.command("diff")(commands.diff_command)
contracts_app.command("dispatch")(commands.dispatch_command)
contracts_app.command("can-i-deploy")(records.can_i_deploy_command)
contracts_app.command("results")(records.results_command)
contracts_app.command("report")(records.report_command)
contracts_app.command("page")(records.page_command)
contracts_app.command("rollup")(records.rollup_command)


def main() -> None:
    """Entry point of the ``mdp-contracts`` console script."""
    contracts_app()
