"""The run report: what a run did, its reconciliation, and the exit code that follows."""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import EXIT_BAD_INPUT, BadInputError, PipelineError, SinkUnavailableError
from .sinks.urls import mask_urls, redact_url

if TYPE_CHECKING:  # stdlib-only at run time: the CLI reports usage errors before heavy imports
    from .sinks.queue import WriteReport


@dataclass
class RunReport:
    """What a run did; ``exit_code`` 0 only when every tick and bar is accounted for and stored.

    ``status``: ok, stopped (by a signal, ``exit_code`` 130 or 143, every tick taken accounted
    for), failed or bad_input.
    """

    status: str = "ok"
    error: str | None = None
    exit_code: int = 0
    source: dict[str, Any] = field(default_factory=dict)
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
    resolutions: dict[str, dict[str, int]] = field(default_factory=dict)
    bars_built: int = 0
    bars_written: int = 0
    bars_unwritten: int = 0
    write: dict[str, Any] = field(default_factory=dict)
    feedback: dict[str, Any] = field(default_factory=dict)
    stopped_by: str = "end of input"
    # A stopped replay: rows_not_read (exact, or None with rows_not_read_exact False when not
    # known), read_fraction (of the rows), the last event time committed (UTC ISO, minutes).
    # Empty when the input was read to its end.
    partial: dict[str, Any] = field(default_factory=dict)
    # With --allowed-lateness or --late-output: the lateness, the engine's open and retained
    # windows (its state size) and the late ticks written aside.
    lateness: dict[str, Any] = field(default_factory=dict)

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
        handed it (``ticks_admitted``).
        """
        r = self.resolutions[label]
        engine_in = r["ticks_in"] - r["bad"]
        accounted = r["ticks_in_bars"] + r["ticks_late"] + r["open_ticks"]
        accounted += r.get("outside_session", 0)
        # Open ticks restored from a checkpoint were taken in by an earlier run.
        taken = engine_in - r.get("restored", 0)
        return taken == self.ticks_admitted and engine_in == accounted

    def as_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready data."""
        return {
            "status": self.status,
            "exit_code": self.exit_code,
            "error": self.error,
            "stopped_by": self.stopped_by,
            "partial": self.partial or None,
            "source": self.source,
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
            "resolutions": self.resolutions,
            "bars_built": self.bars_built,
            "bars_written": self.bars_written,
            "bars_unwritten": self.bars_unwritten,
            "reconciled": self.reconciled,
            "write": self.write,
            "feedback": self.feedback,
            **({"lateness": self.lateness} if self.lateness else {}),
        }


def write_dict(write: WriteReport | None) -> dict[str, Any]:
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
    if isinstance(error, SinkUnavailableError) and not report.bars_unwritten:
        report.bars_unwritten = error.unwritten or 0
    if error is not None:
        report.status = "bad_input" if error.exit_code == EXIT_BAD_INPUT else "failed"
        report.stopped_by = "bad input" if report.status == "bad_input" else "error"
        report.error = mask_urls(_error_text(error, report))
        report.exit_code = error.exit_code
        if isinstance(error, BadInputError):
            report.bars_written = 0  # rolled back: the transactional sink committed nothing
            report.bars_unwritten = 0
    elif not report.reconciled or report.bars_unwritten:
        report.status = "failed"
        report.error = "not every tick or bar is accounted for"
        report.exit_code = 1
    elif (code := stop_exit_code(report.stopped_by)) is not None:
        # Stopped by a signal: the summary says so and the process exits 128 + its number,
        # both from this one field, whatever the output form.
        report.status = "stopped"
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
    report = RunReport(sink=redact_url(sink_url), stopped_by="error")
    report.status = "bad_input" if exc.exit_code == 2 else "failed"
    report.error = mask_urls(str(exc))
    report.exit_code = exc.exit_code
    return report
