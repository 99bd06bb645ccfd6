"""A run's status and exit code follow from what stopped it, in the report itself."""

from __future__ import annotations

import pytest

from market_data_pipeline.cli.output import summary_lines
from market_data_pipeline.cli.signals import EXIT_CODES
from market_data_pipeline.report import PartialRead, RunReport, StopCause, conclude


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_stop_is_stopped_with_the_signals_exit_code(sig: str) -> None:
    report = conclude(RunReport(stopped_by=StopCause(sig)), None)
    assert (report.status, report.exit_code) == ("stopped", EXIT_CODES[sig])
    assert report.as_dict()["exit_code"] == EXIT_CODES[sig]
    assert summary_lines(report)[0].startswith(f"[bold]mdp run[/]: [yellow]stopped[/] ({sig})")


@pytest.mark.parametrize("cause", ["end of input", "duration", "shutdown"])
def test_other_ends_are_ok(cause: str) -> None:
    report = conclude(RunReport(stopped_by=StopCause(cause)), None)
    assert (report.status, report.exit_code) == ("ok", 0)


def test_a_stopped_replay_says_partial_and_keeps_the_signals_exit_code() -> None:
    report = conclude(RunReport(stopped_by=StopCause.SIGINT), None)
    report.partial = PartialRead(rows_not_read=None, read_fraction=None)
    lines = summary_lines(report)
    assert "partial" in lines[0] and report.exit_code == 130
    assert any("an unknown number of rows not read" in line for line in lines)


def test_lost_data_outranks_the_signal() -> None:
    report = conclude(RunReport(stopped_by=StopCause.SIGINT, bars_built=3, bars_unwritten=3), None)
    assert (report.status, report.exit_code) == ("failed", 1)
