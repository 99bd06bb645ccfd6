"""The entry point ignores SIGINT/SIGTERM once a run is over, so shutdown cannot be killed."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from market_data_pipeline.cli import entry
from market_data_pipeline.cli.signals import HANDLED, STOP


@pytest.fixture
def saved_handlers() -> Iterator[None]:
    before = {sig: signal.getsignal(sig) for sig in HANDLED}
    yield
    STOP.uninstall()
    for sig, handler in before.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("saved_handlers")
def test_a_finished_run_ignores_signals_during_interpreter_shutdown() -> None:
    # Shutdown resets Python-level handlers to SIG_DFL, which would turn a late SIGTERM into
    # exit -15 after the summary; an ignored signal is left alone.
    STOP.install()
    entry._ignore_signals_while_exiting()
    assert all(signal.getsignal(sig) is signal.SIG_IGN for sig in HANDLED)


@pytest.mark.usefixtures("saved_handlers")
def test_other_commands_keep_the_default_handlers() -> None:
    STOP.uninstall()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    entry._ignore_signals_while_exiting()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
