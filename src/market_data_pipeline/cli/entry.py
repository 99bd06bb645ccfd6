"""The ``mdp`` console script: signal handlers go in before the CLI (typer, rich) loads.

``mdp.cli.app`` takes a few hundred milliseconds to import; a Ctrl-C meanwhile must not become a
traceback, so this module imports nothing heavy before ``signals.STOP.install()``.
"""

from __future__ import annotations

import gc
import signal

from . import startup
from .signals import HANDLED, STOP


def main() -> None:
    """Entry point of the ``mdp`` console script and of ``python -m market_data_pipeline.cli``."""
    STOP.install()
    startup.hold()  # resumed once the command has loaded what it needs
    startup.one_blas_thread()  # before numpy loads
    try:
        from .app import main as app_main

        app_main()
    finally:
        _ignore_signals_while_exiting()
        # Shutdown's last garbage collection walks every object the imports made (Core's
        # pydantic models, polars, typer): 0.1-0.15 s of CPU after the summary is printed.
        # Frozen objects are left out of it; everything the run opened was closed already.
        gc.freeze()


def _ignore_signals_while_exiting() -> None:
    # Interpreter shutdown puts SIG_DFL back for every Python-level handler, so a SIGTERM in the
    # last milliseconds would kill a run whose summary and exit code are already decided.
    # Ignored signals are left alone by shutdown. Commands other than ``run`` gave the
    # defaults back long ago (``release_for``) and keep them.
    if STOP.installed:
        for sig in HANDLED:
            signal.signal(sig, signal.SIG_IGN)
