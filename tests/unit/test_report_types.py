"""The run report's typed sections render as ``--json`` always printed them."""

from __future__ import annotations

import json

from market_data_pipeline.errors import SinkUnavailableError, UsageError
from market_data_pipeline.report import (
    GapSummary,
    LatenessSummary,
    LateOutputSummary,
    PartialRead,
    ResolutionCounts,
    Revisions,
    RunReport,
    RunStatus,
    StopCause,
    conclude,
    failed_before_start,
)

BASE = ["ticks_in", "ticks_in_bars", "ticks_late", "bad", "open_ticks", "outside_session"]


def test_optional_counts_appear_only_when_present_and_in_their_order() -> None:
    plain = ResolutionCounts(ticks_in=5, ticks_in_bars=5, bars_built=1)
    assert list(plain.as_dict()) == [*BASE, "bars_built"]
    full = ResolutionCounts(
        ticks_in=5,
        ticks_in_bars=5,
        bars_built=3,
        gaps=GapSummary(gaps=2, filled=2, first=("A 2024-01-02T14:35Z",)),
        restored=0,
        revisions=Revisions(revised=1, revising_ticks=1, rewritten=1, retained_windows=4),
    )
    out = full.as_dict()
    assert list(out) == [
        *BASE,
        *["bars_built", "gaps", "gaps_filled", "first_gaps", "restored"],
        *["revised", "revising_ticks", "rewritten", "retained_windows"],
    ]
    assert out["first_gaps"] == ["A 2024-01-02T14:35Z"] and out["restored"] == 0


def test_a_restored_count_is_part_of_the_reconciliation() -> None:
    report = RunReport(
        ticks_read=3,
        ticks_admitted=3,
        resolutions={"1m": ResolutionCounts(ticks_in=5, ticks_in_bars=5, restored=2)},
    )
    assert report.resolution_reconciled("1m") and report.reconciled


def test_sections_and_enums_render_as_plain_json() -> None:
    report = RunReport(
        stopped_by=StopCause.SIGINT,
        partial=PartialRead(rows_not_read=None),
        lateness=LatenessSummary("10s", 1, 2, 3, LateOutputSummary("late.csv", 4)),
    )
    out = conclude(report, None).as_dict()
    assert (out["status"], out["stopped_by"]) == ("stopped", "SIGINT")
    assert type(out["status"]) is str and type(out["stopped_by"]) is str
    assert out["partial"] == {
        "rows_not_read": None,
        "rows_not_read_exact": False,
        "read_fraction": None,
        "last_event_committed": None,
    }
    assert out["lateness"]["late_output"] == {"target": "late.csv", "rows": 4}
    assert out["write"] == {} and "lateness" not in RunReport().as_dict()
    assert json.loads(json.dumps(out)) == out


def test_the_error_stays_an_exception_until_printed() -> None:
    down = SinkUnavailableError("postgresql://u:pw-9z@db/x is down", unwritten=3)
    report = conclude(RunReport(bars_built=5, bars_written=0, bars_unwritten=5), down)
    assert report.failure is down
    assert (report.status, report.stopped_by) == (RunStatus.FAILED, StopCause.ERROR)
    # The line states the report's own count, and no password.
    assert report.error == "postgresql://u:***@db/x is down (5 bars not written)"
    assert report.as_dict()["error"] == report.error


def test_unaccounted_counts_fail_with_their_own_error() -> None:
    report = conclude(RunReport(ticks_read=1), None)
    assert report.status is RunStatus.FAILED and report.exit_code == 1
    assert report.error == "not every tick or bar is accounted for"


def test_a_run_that_never_started_has_empty_sections() -> None:
    report = failed_before_start("sqlite:///x.db", UsageError("bad resolution '7x'"))
    assert (report.status, report.exit_code) == (RunStatus.BAD_INPUT, 2)
    out = report.as_dict()
    assert (out["source"], out["resolutions"], out["write"], out["partial"]) == ({}, {}, {}, None)
