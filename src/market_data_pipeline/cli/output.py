"""What ``mdp run`` shows: a live progress line on a terminal, then a summary (or JSON).

Text that came from data, paths, URLs or the network is printed literally: it goes through
``literal`` (rich markup escaped) or into a ``Text``, never into a markup string as is, so a
symbol ``[bold]x[/]`` or a path with ``[/x]`` shows as typed. Every message passes
``mask_urls`` first, so no URL password reaches the terminal, the JSON or the log.

rich loads on the first thing printed through it: a ``--json`` run that logs nothing off a
terminal writes its report without it (about 25 ms of start-up saved).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from ..defaults import DEFAULT_SINK
from ..report import RunStatus
from ..urls import mask_urls

if TYPE_CHECKING:
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    from ..flow.feedback import FeedbackSummary
    from ..report import LatenessSummary, ResolutionCounts, RunReport
    from ..runtime import Pipeline
    from ..sources.base import SourceInfo

_LEVEL_STYLE = {"ok": "green", "soft": "yellow", "hard": "bold red"}


def error_line(message: str) -> None:
    """Print one ``error:`` line on stderr, ``message`` literally and with URLs masked."""
    from rich.console import Console
    from rich.text import Text

    line = Text.assemble(("error:", "bold red"), " ", mask_urls(message))
    Console(stderr=True, highlight=False).print(line, soft_wrap=True)


def literal(value: object) -> str:
    """Return ``value`` as markup that prints it literally (URL passwords masked)."""
    from rich.markup import escape

    return escape(mask_urls(str(value)))


class MaskingFormatter(logging.Formatter):
    """A log formatter that masks URL passwords in the whole formatted record."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_urls(super().format(record))


class RunView:
    """Progress while running (terminal only, never in JSON mode) and the final summary."""

    def __init__(self, *, json_mode: bool, interactive: bool) -> None:
        self.json_mode = json_mode
        self.interactive = interactive and not json_mode
        self._live: Live | None = None
        self._pipeline: Pipeline | None = None
        _log_to(_StderrHandler(self))

    @cached_property
    def _err(self) -> Console:
        from rich.console import Console

        return Console(stderr=True, highlight=False)

    @cached_property
    def _out(self) -> Console:
        from rich.console import Console

        return Console(highlight=False, soft_wrap=True)

    def start(self, pipeline: Pipeline) -> None:
        """Show the live line for ``pipeline`` (no-op off a terminal)."""
        self._pipeline = pipeline
        if self.interactive:
            from rich.live import Live

            self._live = Live(
                get_renderable=self._line,
                console=self._err,
                refresh_per_second=4,
                transient=True,
            )
            self._live.start()

    def stop(self) -> None:
        """Remove the live line."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _line(self) -> Text:
        from rich.text import Text

        if self._pipeline is None:
            return Text("")
        p = self._pipeline.progress()
        rate = p.ticks / p.elapsed_s if p.elapsed_s > 0 else 0.0
        line = Text.assemble(
            ("mdp run ", "bold"),
            f"{p.elapsed_s:6.1f}s  {p.ticks:>12,} ticks  {rate:>11,.0f}/s  ",
            f"{p.bars_written:>9,} bars written  queue {p.queue_depth:,}/{p.queue_capacity:,}  ",
            # "store soft, rate 50%": the store's backpressure and the share of the rate it leaves.
            (f"store {p.level}, rate {p.scale:.0%}", _LEVEL_STYLE.get(p.level, "")),
        )
        if p.read_fraction is not None or p.event_ns is not None:
            line.append("  " + replay_progress(p.read_fraction, p.elapsed_s, p.event_ns))
        return line

    def summary(self, report: RunReport) -> None:
        """Print the summary: JSON on stdout with ``--json``, else a short human summary."""
        if self.json_mode:
            sys.stdout.write(mask_urls(json.dumps(report.as_dict(), indent=2)) + "\n")
            return
        if report.error:
            error_line(report.error)
        bad_input = report.status == RunStatus.BAD_INPUT
        if bad_input or (report.ticks_read == 0 and report.status == RunStatus.FAILED):
            if bad_input and report.source.get("transactional"):
                self._out.print("  nothing was written: the run's transaction was rolled back")
            return  # the error line says what is wrong
        for line in summary_lines(report):
            self._out.print(line)


def replay_progress(fraction: float | None, elapsed_s: float, event_ns: int | None) -> str:
    """Return "42.0% ETA 1m05s  at 2024-01-02T09:31Z": share done, time left, event time.

    ``fraction``: the share of the input's rows processed (not read: a reader runs ahead). The
    ETA assumes the rest goes at the pace so far; unknown ("ETA ?") before any is processed.
    """
    parts = []
    if fraction is not None:
        left = "?"
        if 0 < fraction < 1:
            left = _duration(elapsed_s * (1 - fraction) / fraction)
        elif fraction >= 1:
            left = "0s"
        parts.append(f"{fraction:6.1%} ETA {left}")
    if event_ns is not None:
        parts.append(f"at {_minute(event_ns)}")
    return "  ".join(parts)


def _duration(seconds: float) -> str:
    """Return ``seconds`` as "45s", "3m07s" or "2h05m"."""
    whole = int(seconds + 0.5)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _minute(ts_ns: int) -> str:
    stamp = datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=UTC)
    return stamp.isoformat(timespec="minutes").replace("+00:00", "Z")


def summary_lines(report: RunReport) -> list[str]:
    """Return the human summary, a few lines long."""
    status = {
        RunStatus.OK: "[green]ok[/]",
        RunStatus.STOPPED: "[yellow]stopped[/]",
        RunStatus.FAILED: "[bold red]FAILED[/]",
    }.get(report.status, "[bold red]BAD INPUT[/]")
    if report.status in (RunStatus.OK, RunStatus.STOPPED) and report.partial:
        status = "[yellow]partial[/]"  # stopped before the end of its input: not "ok"
    lines = [
        f"[bold]mdp run[/]: {status} ({literal(report.stopped_by)}) - "
        f"{report.ticks_admitted + report.bad_rows:,} ticks in "
        f"{report.elapsed_s:.2f} s ({report.ticks_per_s:,.0f} ticks/s)",
        f"  source   {literal(_source(report.source))}",
        f"  store    {literal(report.sink)}: {report.bars_written:,} bars written of "
        f"{report.bars_built:,} built, {report.bars_unwritten:,} unwritten",
    ]
    for label, r in report.resolutions.items():
        ok = report.resolution_reconciled(label)
        mark = "[green]reconciled[/]" if ok else "[bold red]MISMATCH[/]"
        still_open = f" + {r.open_ticks:,} open" if r.open_ticks else ""
        off_hours = f" + {r.outside_session:,} outside session" if r.outside_session else ""
        rev = r.revisions
        revised = (
            f" ({rev.revised:,} revised by {rev.revising_ticks:,} late ticks)"
            if rev is not None and rev.revising_ticks
            else ""
        )
        lines.append(
            f"  {literal(f'{label:<8}')} {r.ticks_in:,} ticks = {r.ticks_in_bars:,} in "
            f"{r.bars_built:,} bars{revised} + {r.ticks_late:,} late + {r.bad:,} bad"
            f"{off_hours}{still_open}  {mark}"
        )
        lines.extend(_gap_line(r))
    if report.ticks_unprocessed and report.source.get("transactional"):
        # A synthetic source's unused ticks were never data; a replay's were rows of a file.
        lines.append(
            f"  stopped  {report.ticks_unprocessed:,} ticks read but not processed when the run"
            " stopped; a replay re-run completes them (writes are idempotent)"
        )
    lines.extend(_partial_lines(report))
    if report.bad_reasons:
        reasons = ", ".join(
            f"{n:,} {literal(why)}" for why, n in sorted(report.bad_reasons.items())
        )
        lines.append(f"  skipped  {reasons}")
    lines.extend(_lateness_lines(report.lateness))
    lines.extend(_file_lines(report))
    lines.extend(_feedback_lines(report.feedback))
    if report.bars_written and _in_process(report.sink):
        lines.append(
            f"  note     {literal(report.sink)} kept the bars in this process only: they end with"
            f" it (--sink {DEFAULT_SINK} keeps them)"
        )
    elif report.status in (RunStatus.OK, RunStatus.STOPPED) and report.bars_written:
        table = f" --table {literal(report.table)}" if report.table else ""
        lines.append(
            f"  look     {literal(_mdp())} bars --sink {literal(_quote(report.sink))}{table}"
        )
    return lines


def _in_process(sink: str) -> bool:
    """True for a store that ends with the process: another command cannot look into it."""
    return sink.startswith("memory:") or sink.endswith(":memory:")


def _partial_lines(report: RunReport) -> list[str]:
    """A stopped replay: what it did not read and the last event time it committed."""
    partial = report.partial
    if partial is None:
        return []
    rows = partial.rows_not_read
    count = f"{rows:,}" if rows is not None else "an unknown number of"
    share = partial.read_fraction
    read = f" ({share:.0%} of the input's rows taken)" if share is not None else ""
    last = partial.last_event_committed or "none (nothing committed)"
    return [
        f"  [yellow]partial[/]  {count} rows not read{read}; last event time committed {last}",
    ]


def _gap_line(r: ResolutionCounts) -> list[str]:
    gaps = r.gaps
    if gaps is None or not gaps.gaps:
        return []
    first = ", ".join(gaps.first)
    filled = f", {gaps.filled:,} filled with flat bars" if gaps.filled else ""
    return [f"           {gaps.gaps:,} in-session windows without ticks{filled} (first: {first})"]


def _mdp() -> str:
    """Return how the user can call ``mdp``: the bare name when it is on PATH."""
    invoked = sys.argv[0]
    if shutil.which("mdp") or Path(invoked).name != "mdp":
        return "mdp"
    return invoked


def _log_to(handler: logging.Handler) -> None:
    """Send warnings (store retries, bus outages) to ``handler`` and nowhere else."""
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)


class _StderrHandler(logging.Handler):
    """Warnings to stderr, above the live progress line: rich's handler on a terminal, plain
    ``LEVEL: message`` lines elsewhere. Which one is decided, and made, at the first record."""

    def __init__(self, view: RunView) -> None:
        super().__init__()
        self._view = view
        self._handler: logging.Handler | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self._handler is None:  # under this handler's lock: made once
            self._handler = _stderr_handler(self._view._err)
        self._handler.handle(record)


def _stderr_handler(console: Console) -> logging.Handler:
    handler: logging.Handler
    if console.is_terminal:
        from rich.logging import RichHandler

        handler = RichHandler(console=console, show_time=False, show_path=False, markup=False)
        handler.setFormatter(MaskingFormatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(MaskingFormatter("%(levelname)s: %(message)s"))
    return handler


_MAX_FILE_LINES = 10


def _file_lines(report: RunReport) -> list[str]:
    """Per input file counts (several files), and a warning when a replay had late ticks."""
    files = report.source.get("files", [])
    lines = []
    if len(files) > 1:
        for stat in files[:_MAX_FILE_LINES]:
            lines.append(
                f"  file     {literal(stat['path'])}: {stat['rows']:,} rows, {stat['bad']:,} bad,"
                f" {stat['duplicate']:,} duplicate, {stat['late']:,} late"
            )
        if len(files) > _MAX_FILE_LINES:
            lines.append(f"  file     ... {len(files) - _MAX_FILE_LINES:,} more (see --json)")
    late = max((r.ticks_late for r in report.resolutions.values()), default=0)
    if files and late and report.status in (RunStatus.OK, RunStatus.STOPPED):
        lines.append(
            f"  [yellow]warning[/]  {late:,} ticks came after their window had closed and are"
            " not in any bar; time-sorted files have none. Widen --grace (e.g. --grace 1m) or"
            " --allowed-lateness to take them, --late-output to keep them, or --on-late fail to"
            " refuse them"
        )
    return lines


def _lateness_lines(lateness: LatenessSummary | None) -> list[str]:
    """Allowed lateness and the retained windows; where the late ticks went."""
    if lateness is None:
        return []
    lines = [
        f"  lateness {literal(lateness.allowed_lateness)} allowed;"
        f" at most {lateness.peak_retained_windows:,} closed windows retained at once"
    ]
    output = lateness.late_output
    if output is not None:
        lines.append(f"  late     {output.rows:,} late ticks kept in {literal(output.target)}")
    return lines


def _source(source: SourceInfo) -> str:
    return str(source.get("label") or source.get("kind", "?"))


def _feedback_lines(feedback: FeedbackSummary) -> list[str]:
    lines = []
    for provider, info in feedback.get("providers", {}).items():
        seconds = info["seconds_at_level"]
        spent = ", ".join(f"{level} {secs:.1f}s" for level, secs in seconds.items())
        lines.append(
            f"  rate     {literal(provider)}: {spent}; {info['rate_changes']} rate changes"
        )
    return lines


def _quote(text: str) -> str:
    return f"'{text}'" if any(c in text for c in " ?&") else text
