"""The ``mdp`` console script: signal handlers go in before the CLI (typer, rich) loads.

``mdp.cli.app`` takes a few hundred milliseconds to import; a Ctrl-C meanwhile must not become a
traceback, so this module imports nothing heavy before ``signals.STOP.install()``.
"""

from __future__ import annotations

from .signals import STOP


def main() -> None:
    """Entry point of the ``mdp`` console script and of ``python -m market_data_pipeline.cli``."""
    STOP.install()
    from .app import main as app_main

    app_main()
