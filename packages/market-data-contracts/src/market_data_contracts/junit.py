"""Read pytest's JUnit XML: counts, failures (with the contract each names), notices.

Also writes the verdict back into a report as testsuite properties (``mdp.verdict``, ...), so a
JUnit viewer shows the same verdict as ``result.json``.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ContractsError
from .verdict import ContractResult, Counts, Failure, Notice

NOT_APPLICABLE = "not applicable: "  # a skip reason prefix: Core lacks a capability
NOTICE_PROPERTY = "mdp.notice"  # testsuite property: JSON of a ``verdict.Notice``
FAILURE_PROPERTY = "mdp.failure"  # testsuite property: JSON {test_id, contract, symbols}


@dataclass(frozen=True)
class SuiteReport:
    """What one JUnit report says: counts, failures in suite order (first = most basic), notices."""

    counts: Counts = field(default_factory=Counts)
    failures: tuple[Failure, ...] = ()
    notices: tuple[Notice, ...] = ()

    @property
    def first_failure(self) -> Failure | None:
        """Return the first failing contract, or None."""
        return self.failures[0] if self.failures else None


def read_junit(path: Path) -> SuiteReport:
    """Parse a pytest JUnit file; raise ``ContractsError`` when it is missing or malformed."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ContractsError(f"no readable JUnit report at {path}: {exc}") from exc
    counts = dict.fromkeys(
        ("passed", "failed", "errors", "skipped", "not_applicable", "xfailed"), 0
    )
    failed: list[tuple[str, str]] = []
    for case in root.iter("testcase"):
        outcome, message = _outcome(case)
        counts[outcome] += 1
        if outcome == "not_applicable":
            counts["skipped"] += 1
        if outcome in ("failed", "errors"):
            failed.append((_case_id(case), message))
    properties = _properties(root)
    return SuiteReport(
        counts=Counts(**counts),
        failures=_failures(failed, properties.get(FAILURE_PROPERTY, [])),
        notices=tuple(_notice(data) for data in properties.get(NOTICE_PROPERTY, [])),
    )


def _properties(root: ET.Element) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for suite in root.iter("testsuite"):
        for prop in suite.findall("properties/property"):
            name, value = prop.get("name", ""), prop.get("value", "")
            if name in (NOTICE_PROPERTY, FAILURE_PROPERTY):
                try:
                    data = json.loads(value)
                except ValueError:
                    continue
                if isinstance(data, dict):
                    found.setdefault(name, []).append(data)
    return found


def _notice(data: dict[str, Any]) -> Notice:
    return Notice(
        kind=str(data.get("kind", "notice")),
        message=str(data.get("message", "")),
        test_id=data.get("test_id"),
        workaround=data.get("workaround"),
    )


def _failures(failed: list[tuple[str, str]], recorded: list[dict[str, Any]]) -> tuple[Failure, ...]:
    """Join the failing test cases (in report order) with what the suite said about each."""
    by_id = {_node_case_id(str(r.get("test_id", ""))): r for r in recorded}
    out: list[Failure] = []
    for case_id, message in failed:
        info = by_id.get(case_id, {})
        symbols = tuple(str(s) for s in info.get("symbols", ()))
        out.append(Failure(case_id, message, contract=info.get("contract"), symbols=symbols))
    return tuple(out)


def _node_case_id(nodeid: str) -> str:
    """``tests/contracts/test_x.py::test_y[p]`` -> ``test_x::test_y[p]`` (as ``_case_id`` says)."""
    path, _, name = nodeid.partition("::")
    return f"{Path(path).stem}::{name.replace('::', '.')}"


def _outcome(case: ET.Element) -> tuple[str, str]:
    for tag, outcome in (("failure", "failed"), ("error", "errors")):
        node = case.find(tag)
        if node is not None:
            message = _first_line(node.get("message") or node.text or tag)
            if message == "collection failure":  # say why: the import that failed
                message = f"{message}: {_raised(node.text or '')}"
            return outcome, message
    skipped = case.find("skipped")
    if skipped is not None:
        message = skipped.get("message") or ""
        if skipped.get("type") == "pytest.xfail":
            return "xfailed", message
        return ("not_applicable" if NOT_APPLICABLE in message else "skipped"), message
    return "passed", ""


_RAISED = re.compile(r"^E\s+(\w+(?:Error|Exception)\b.*)$", re.MULTILINE)


def _raised(trace: str) -> str:
    """Return the last ``E   SomeError: ...`` line of a pytest traceback."""
    found = _RAISED.findall(trace)
    return _first_line(found[-1]) if found else "see the log"


def _case_id(case: ET.Element) -> str:
    classname = case.get("classname") or ""
    parts = classname.split(".")
    # pytest writes ``tests.contracts.test_x`` or ``tests.contracts.test_x.TestClass``.
    module = next((p for p in reversed(parts) if p.startswith("test_")), parts[-1])
    inner = parts[parts.index(module) + 1 :] if module in parts else []
    name = ".".join([*inner, case.get("name", "?")])
    return f"{module}::{name}" if module else name


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


def judge_suite(code: int | None, junit: Path, started_at: float) -> tuple[SuiteReport, str | None]:
    """Return what a suite run reported and why it did not finish normally (None when it did).

    ``code`` is pytest's return code (None when it timed out), ``started_at`` the wall-clock
    time (``time.time()``) the run started; ``junit`` must have been removed before the run.
    Exit 0 or 1 with a report written by this run is a normal finish (failures are in the
    report); any other exit, a missing, stale or unreadable report is a suite error. The
    verdict itself is ``verdict.decide``'s.
    """
    if code is None:
        return SuiteReport(), "the suite timed out"
    meaning = _PYTEST_EXIT.get(code, "unexpected exit code") if code not in (0, 1) else ""
    exited = f"pytest exited {code}: {meaning}" if meaning else f"pytest exited {code}"
    if not _written_since(junit, started_at):
        return SuiteReport(), f"{exited}, without writing a JUnit report"
    try:
        report = read_junit(junit)
    except ContractsError as exc:
        return SuiteReport(), f"{exited}: {exc}"
    if meaning:
        return report, exited
    if code == 1 and not (report.counts.failed or report.counts.errors):
        return report, "pytest exited 1 but the report shows no failure"
    return report, None


def _written_since(path: Path, started_at: float) -> bool:
    try:
        return path.stat().st_mtime >= started_at - _MTIME_SLACK_S
    except OSError:
        return False


def remove_report(path: Path) -> None:
    """Delete a JUnit report left by an earlier run, so it can never be read as this run's."""
    path.unlink(missing_ok=True)


def write_verdict_properties(path: Path, result: ContractResult) -> None:
    """Add ``mdp.verdict``, ``mdp.exit_code``, ``mdp.core_version`` (...) to every testsuite."""
    try:
        tree = ET.parse(path)
    except (OSError, ET.ParseError):
        return  # no report to annotate: result.json still carries the verdict
    values = {
        "mdp.verdict": result.verdict.value,
        "mdp.exit_code": str(result.exit_code),
        "mdp.core_requested": result.core_requested,
        "mdp.core_version": result.core_version or "",
        "mdp.core_source": result.core_source,
        "mdp.python": result.python,
        "mdp.reason": result.reason or "",
    }
    for suite in tree.getroot().iter("testsuite"):
        props = suite.find("properties")
        if props is None:
            props = ET.Element("properties")
            suite.insert(0, props)
        for name, value in values.items():
            ET.SubElement(props, "property", name=name, value=value)
    tree.write(path, encoding="utf-8", xml_declaration=True)
