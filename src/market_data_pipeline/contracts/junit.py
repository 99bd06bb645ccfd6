"""Read pytest's JUnit XML into counts and the first failure, the numbers a matrix cell reports."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from .errors import ContractsError


@dataclass(frozen=True)
class SuiteCounts:
    """Outcome counts of one suite run; ``first_failure`` is ``"test id: message"`` or None."""

    passed: int = 0
    failed: int = 0
    errors: int = 0
    skipped: int = 0
    xfailed: int = 0
    duration_s: float = 0.0
    first_failure: str | None = None

    @property
    def total(self) -> int:
        """Return how many tests ran or were skipped."""
        return self.passed + self.failed + self.errors + self.skipped + self.xfailed

    @property
    def ok(self) -> bool:
        """Return whether nothing failed or errored and at least one test ran."""
        return self.failed == 0 and self.errors == 0 and self.passed + self.xfailed > 0


def read_junit(path: Path) -> SuiteCounts:
    """Parse a pytest JUnit file; raise ``ContractsError`` when it is missing or malformed."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ContractsError(f"no readable JUnit report at {path}: {exc}") from exc
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "xfailed": 0}
    first: str | None = None
    duration = sum(float(s.get("time", 0) or 0) for s in root.iter("testsuite"))
    for case in root.iter("testcase"):
        outcome, message = _outcome(case)
        counts[outcome] += 1
        if first is None and outcome in ("failed", "errors"):
            first = f"{_case_id(case)}: {message}"
    return SuiteCounts(**counts, duration_s=round(duration, 2), first_failure=first)


def _outcome(case: ET.Element) -> tuple[str, str]:
    for tag, outcome in (("failure", "failed"), ("error", "errors")):
        node = case.find(tag)
        if node is not None:
            return outcome, _first_line(node.get("message") or node.text or tag)
    skipped = case.find("skipped")
    if skipped is not None:
        kind = "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
        return kind, skipped.get("message") or ""
    return "passed", ""


def _case_id(case: ET.Element) -> str:
    module = (case.get("classname") or "").rsplit(".", 1)[-1]
    return f"{module}::{case.get('name', '?')}" if module else case.get("name", "?")


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


# pytest's exit codes other than 0 (all passed) and 1 (some tests failed).
_PYTEST_EXIT = {
    2: "interrupted",
    3: "internal error",
    4: "usage error (bad arguments)",
    5: "no tests were collected",
}
# Filesystems with coarse timestamps may date a fresh file slightly before the run started.
_MTIME_SLACK_S = 2.0


def judge_suite(code: int | None, junit: Path, started_at: float) -> tuple[SuiteCounts, str | None]:
    """Return the counts of a suite run and why it failed (None when it passed).

    ``code`` is pytest's return code (None when it timed out), ``started_at`` the wall-clock
    time (``time.time()``) the run started; ``junit`` must have been removed before the run.
    Only exit 0 with a passing report is a pass; exit 1 with a report written by this run is a
    genuine test failure; anything else fails with the reason, whatever a report says.
    """
    if code is None:
        return SuiteCounts(), "the suite timed out"
    meaning = _PYTEST_EXIT.get(code, "unexpected exit code") if code not in (0, 1) else ""
    exited = f"pytest exited {code}: {meaning}" if meaning else f"pytest exited {code}"
    if not _written_since(junit, started_at):
        return SuiteCounts(), f"{exited}, without writing a JUnit report"
    try:
        counts = read_junit(junit)
    except ContractsError as exc:
        return SuiteCounts(), f"{exited}: {exc}"
    if meaning:
        return counts, exited
    if code == 1:
        return counts, counts.first_failure or "pytest exited 1: some tests failed"
    if not counts.ok:
        return counts, counts.first_failure or "no test passed"
    return counts, None


def _written_since(path: Path, started_at: float) -> bool:
    try:
        return path.stat().st_mtime >= started_at - _MTIME_SLACK_S
    except OSError:
        return False


def remove_report(path: Path) -> None:
    """Delete a JUnit report left by an earlier run, so it can never be read as this run's."""
    path.unlink(missing_ok=True)
