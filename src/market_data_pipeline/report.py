"""The run report: what a run did, its reconciliation, and the exit code that follows.

Each section of the report is typed (``ResolutionCounts``, ``GapSummary``, ``Revisions``,
``PartialRead``, ``LatenessSummary``; the source's ``SourceInfo``, the write queue's
``WriteReport``); ``as_dict`` renders them as ``mdp run --json`` prints them. The error stays an
exception (``failure``) until it is printed: ``error`` is its one line, URL passwords masked.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .errors import (
    EXIT_BAD_INPUT,
    BadInputError,
    PipelineError,
    ReconciliationError,
    SinkUnavailableError,
)
from .urls import mask_urls, redact_url

if TYPE_CHECKING:  # stdlib-only at run time: the CLI reports usage errors before heavy imports
    from .flow.feedback import FeedbackSummary
    from .sinks.queue import WriteReport
    from .sources.base import SourceInfo


class RunStatus(StrEnum):
    """How a run ended."""

    OK = "ok"
    STOPPED = "stopped"  # by a signal: every tick taken accounted for, exit 128 + its number
    FAILED = "failed"
    BAD_INPUT = "bad_input"


class StopCause(StrEnum):
    """What ended a run's ingest (the report's ``stopped_by``)."""

    END_OF_INPUT = "end of input"
    DURATION = "duration"
    STOPPED = "stopped"  # Core's ``PipelineRunner.stop``
    SIGINT = "SIGINT"
    SIGTERM = "SIGTERM"
    SHUTDOWN = "shutdown"
    CANCELLED = "cancelled"  # the service's runs: cancelled, the service stopping or gone
    SERVICE_STOPPING = "service stopping"
    SERVICE_GONE = "service gone"
    BAD_INPUT = "bad input"
    ERROR = "error"


@dataclass(frozen=True)
class GapSummary:
    """In-session windows without ticks (``--calendar``): how many, filled, the first few."""

    gaps: int
    filled: int
    first: tuple[str, ...]  # "SYMBOL 2024-01-02T14:35Z"


@dataclass(frozen=True)
class Revisions:
    """With allowed lateness: bars revised by late ticks, those ticks (inside ticks_in_bars),
    bars written again (inside bars_built) and closed windows still retained."""

    revised: int
    revising_ticks: int
    rewritten: int
    retained_windows: int


@dataclass(frozen=True)
class ResolutionCounts:
    """One resolution's reconciliation: ticks in = in bars + late + bad + outside + open."""

    ticks_in: int = 0
    ticks_in_bars: int = 0
    ticks_late: int = 0
    bad: int = 0
    open_ticks: int = 0
    outside_session: int = 0
    bars_built: int = 0
    gaps: GapSummary | None = None
    restored: int | None = None  # open ticks restored from a checkpoint (a resumed run)
    revisions: Revisions | None = None

    @property
    def reconciled(self) -> bool:
        """True when the engine's own ticks split exactly into bars, late, outside and open."""
        engine_in = self.ticks_in - self.bad
        accounted = self.ticks_in_bars + self.ticks_late + self.open_ticks + self.outside_session
        return engine_in == accounted

    @property
    def taken(self) -> int:
        """Ticks this run handed the engine (those restored from a checkpoint left out)."""
        return self.ticks_in - self.bad - (self.restored or 0)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ticks_in": self.ticks_in,
            "ticks_in_bars": self.ticks_in_bars,
            "ticks_late": self.ticks_late,
            "bad": self.bad,
            "open_ticks": self.open_ticks,
            "outside_session": self.outside_session,
            "bars_built": self.bars_built,
        }
        if self.gaps is not None:
            out.update(
                gaps=self.gaps.gaps, gaps_filled=self.gaps.filled, first_gaps=list(self.gaps.first)
            )
        if self.restored is not None:
            out["restored"] = self.restored
        if self.revisions is not None:
            r = self.revisions
            out.update(
                revised=r.revised,
                revising_ticks=r.revising_ticks,
                rewritten=r.rewritten,
                retained_windows=r.retained_windows,
            )
        return out


@dataclass(frozen=True)
class PartialRead:
    """What a stopped replay left out: rows not read (None: not known), the share of rows
    taken, and the last event time committed (UTC ISO, minutes; None: nothing committed)."""

    rows_not_read: int | None
    read_fraction: float | None = None
    last_event_committed: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows_not_read": self.rows_not_read,
            "rows_not_read_exact": self.rows_not_read is not None,
            "read_fraction": self.read_fraction,
            "last_event_committed": self.last_event_committed,
        }


@dataclass(frozen=True)
class LateOutputSummary:
    """Where the late ticks went (``--late-output``) and how many."""

    target: str
    rows: int


@dataclass(frozen=True)
class LatenessSummary:
    """Allowed lateness, the engine's open and retained windows (its state size), and the late
    ticks written aside."""

    allowed_lateness: str
    open_windows: int
    retained_windows: int
    peak_retained_windows: int
    late_output: LateOutputSummary | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "allowed_lateness": self.allowed_lateness,
            "open_windows": self.open_windows,
            "retained_windows": self.retained_windows,
            "peak_retained_windows": self.peak_retained_windows,
        }
        if self.late_output is not None:
            out["late_output"] = {"target": self.late_output.target, "rows": self.late_output.rows}
        return out


def _no_source() -> SourceInfo:
    return {}


def _no_feedback() -> FeedbackSummary:
    return {}


@dataclass
class RunReport:
    """What a run did; ``exit_code`` 0 only when every tick and bar is accounted for and stored.

    ``status``: ok, stopped (by a signal, ``exit_code`` 130 or 143, every tick taken accounted
    for), failed or bad_input; ``failure`` is the error that ended it, if any.
    """

    status: RunStatus = RunStatus.OK
    failure: PipelineError | None = None
    exit_code: int = 0
    source: SourceInfo = field(default_factory=_no_source)
    sink: str = ""
    table: str | None = None  # the bars table, when not the default ``bars``
    bus: str = ""
    elapsed_s: float = 0.0
    ingest_s: float = 0.0
    ticks_read: int = 0
    ticks_admitted: int = 0
    ticks_unprocessed: int = 0
    bad_rows: int = 0
    bad_reasons: dict[str, int] = field(default_factory=dict)
    resolutions: dict[str, ResolutionCounts] = field(default_factory=dict)
    bars_built: int = 0
    bars_written: int = 0
    bars_unwritten: int = 0
    write: WriteReport | None = None
    feedback: FeedbackSummary = field(default_factory=_no_feedback)
    stopped_by: StopCause = StopCause.END_OF_INPUT
    partial: PartialRead | None = None  # a replay stopped before the end of its input
    lateness: LatenessSummary | None = None  # with --allowed-lateness or --late-output

    @property
    def error(self) -> str | None:
        """The error line, URL passwords masked (None when the run succeeded)."""
        if self.failure is None:
            return None
        return mask_urls(_error_text(self.failure, self))

    @property
    def ticks_per_s(self) -> float:
        """Ticks taken in (admitted to the bar engine, or bad) per wall-clock second."""
        taken = self.ticks_admitted + self.bad_rows
        return taken / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def reconciled(self) -> bool:
        """True when every tick is accounted for and every built bar is stored.

        Per resolution, the bar engine's own count of ticks must equal what the runtime handed
        it, and split exactly into ticks in bars, late, outside a session and still open; ticks
        read from the source are admitted, bad, or left unprocessed by a stop; no built bar is
        unwritten.
        """
        ticks_ok = self.ticks_read == self.ticks_admitted + self.bad_rows + self.ticks_unprocessed
        ticks_ok &= all(self.resolution_reconciled(label) for label in self.resolutions)
        bars_ok = self.bars_built == self.bars_written + self.bars_unwritten
        return ticks_ok and bars_ok and self.bars_unwritten == 0

    def resolution_reconciled(self, label: str) -> bool:
        """True when one resolution's ticks split exactly into bars, late, outside and open.

        The bar engine's own count (``ticks_in`` less ``bad``) must also equal what the runtime
        handed it (``ticks_admitted``); open ticks restored from a checkpoint were taken in by
        an earlier run.
        """
        counts = self.resolutions[label]
        return counts.reconciled and counts.taken == self.ticks_admitted

    def as_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data."""
        return {
            "status": self.status.value,
            "exit_code": self.exit_code,
            "error": self.error,
            "stopped_by": str(self.stopped_by),
            "partial": self.partial.as_dict() if self.partial else None,
            "source": dict(self.source),
            "sink": self.sink,
            "table": self.table,
            "bus": self.bus,
            "elapsed_s": round(self.elapsed_s, 3),
            "ingest_s": round(self.ingest_s, 3),
            "ticks_read": self.ticks_read,
            "ticks_admitted": self.ticks_admitted,
            "ticks_unprocessed": self.ticks_unprocessed,
            "ticks_per_s": round(self.ticks_per_s, 1),
            "bad_rows": self.bad_rows,
            "bad_reasons": self.bad_reasons,
            "resolutions": {label: r.as_dict() for label, r in self.resolutions.items()},
            "bars_built": self.bars_built,
            "bars_written": self.bars_written,
            "bars_unwritten": self.bars_unwritten,
            "reconciled": self.reconciled,
            "write": write_dict(self.write),
            "feedback": dict(self.feedback),
            **({"lateness": self.lateness.as_dict()} if self.lateness else {}),
        }


def write_dict(write: WriteReport | None) -> dict[str, Any]:
    """Return the write queue's report as the ``write`` section of ``--json``."""
    if write is None:
        return {}
    return {
        "batches": write.batches,
        "write_errors": write.write_errors,
        "retries": write.retries,
        "seconds_writing": round(write.seconds_writing, 3),
        "max_queue_depth": write.max_depth,
        "committed": write.committed,
    }


def conclude(report: RunReport, error: PipelineError | None) -> RunReport:
    """Set the report's status, stop cause and exit code from ``error`` and its counts."""
    if isinstance(error, SinkUnavailableError) and not report.bars_unwritten:
        report.bars_unwritten = error.unwritten or 0
    if error is not None:
        bad_input = error.exit_code == EXIT_BAD_INPUT
        report.status = RunStatus.BAD_INPUT if bad_input else RunStatus.FAILED
        report.stopped_by = StopCause.BAD_INPUT if bad_input else StopCause.ERROR
        report.failure = error
        report.exit_code = error.exit_code
        if isinstance(error, BadInputError):
            report.bars_written = 0  # rolled back: the transactional sink committed nothing
            report.bars_unwritten = 0
    elif not report.reconciled or report.bars_unwritten:
        report.status = RunStatus.FAILED
        report.failure = ReconciliationError("not every tick or bar is accounted for")
        report.exit_code = 1
    elif (code := stop_exit_code(report.stopped_by)) is not None:
        # Stopped by a signal: the summary says so and the process exits 128 + its number,
        # both from this one field, whatever the output form.
        report.status = RunStatus.STOPPED
        report.exit_code = code
    return report


def stop_exit_code(stopped_by: str) -> int | None:
    """Return 128 + the signal's number when ``stopped_by`` names a signal (SIGINT: 130)."""
    try:
        return 128 + int(signal.Signals[stopped_by])
    except KeyError:
        return None  # end of input, duration, a programmatic stop: not a signal


def _error_text(error: PipelineError, report: RunReport) -> str:
    """The error line; a store outage states the report's own count of unwritten bars."""
    if isinstance(error, SinkUnavailableError) and error.unwritten is not None:
        return f"{error.reason} ({report.bars_unwritten} bars not written)"
    return str(error)


def failed_before_start(sink_url: str, exc: PipelineError) -> RunReport:
    """Return the report of a run that never started: nothing read, nothing written."""
    bad_input = exc.exit_code == EXIT_BAD_INPUT
    return RunReport(
        status=RunStatus.BAD_INPUT if bad_input else RunStatus.FAILED,
        failure=exc,
        exit_code=exc.exit_code,
        sink=redact_url(sink_url),
        stopped_by=StopCause.ERROR,
    )
