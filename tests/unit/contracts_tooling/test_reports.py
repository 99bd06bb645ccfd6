"""JUnit reading, cell classification and the matrix reports (JSON, Markdown, terminal table)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from market_data_contracts import matrix, report
from market_data_contracts.errors import ContractsError
from market_data_contracts.junit import SuiteReport, read_junit, write_verdict_properties
from market_data_contracts.verdict import Counts, Failure, Notice, Verdict

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" time="1.5">
  <properties>
    <property name="mdp.failure"
      value='{"test_id": "tests/contracts/test_a.py::test_bad", "contract": "schema Bar",
      "symbols": ["market_data_core._models:Bar"]}'/>
    <property name="mdp.notice"
      value='{"kind": "defect-fixed", "message": "ack sends XACK", "workaround": "our XACK"}'/>
  </properties>
  <testcase classname="tests.contracts.test_a" name="test_ok" time="0.1"/>
  <testcase classname="tests.contracts.test_a" name="test_bad" time="0.1">
    <failure message="AssertionError: Bar schema changed&#10;more">trace</failure></testcase>
  <testcase classname="tests.contracts.test_b" name="test_err" time="0.1">
    <error message="fixture exploded">trace</error></testcase>
  <testcase classname="tests.contracts.test_b" name="test_x" time="0.1">
    <skipped type="pytest.xfail" message="known Core defect"/></testcase>
  <testcase classname="tests.contracts.test_b" name="test_s" time="0.1">
    <skipped type="pytest.skip" message="no redis"/></testcase>
  <testcase classname="tests.contracts.test_b" name="test_c" time="0.1">
    <skipped type="pytest.skip" message="not applicable: Core has no InMemoryBus"/></testcase>
</testsuite></testsuites>
"""


def test_read_junit_counts_failures_and_notices(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    suite = read_junit(path)
    c = suite.counts
    assert (c.passed, c.failed, c.errors, c.xfailed, c.skipped, c.not_applicable) == (
        1,
        1,
        1,
        1,
        2,
        1,
    )
    assert c.missing == 1 and c.total == 6
    first = suite.first_failure
    assert first is not None and first.test_id == "test_a::test_bad"
    assert first.message == "AssertionError: Bar schema changed"
    assert first.contract == "schema Bar" and first.symbols == ("market_data_core._models:Bar",)
    assert [f.test_id for f in suite.failures] == ["test_a::test_bad", "test_b::test_err"]
    assert suite.notices == (Notice("defect-fixed", "ack sends XACK", None, "our XACK"),)


def test_a_collection_failure_says_which_import_failed(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    trace = (
        "ImportError while importing\nE   ModuleNotFoundError: No module named 'market_data_core.x'"
    )
    path.write_text(
        '<testsuites><testsuite name="pytest"><testcase classname="tests.contracts.test_a" '
        f'name="test_a"><error message="collection failure">{trace}</error></testcase>'
        "</testsuite></testsuites>"
    )
    [failure] = read_junit(path).failures
    assert failure.message == (
        "collection failure: ModuleNotFoundError: No module named 'market_data_core.x'"
    )


def test_missing_junit_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ContractsError):
        read_junit(tmp_path / "absent.xml")


def test_verdict_properties_are_written_into_the_report(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    result = _cell("1.2.0", Counts(passed=3)).contract
    write_verdict_properties(path, result)
    props = {p.get("name"): p.get("value") for p in ET.parse(path).getroot().iter("property")}
    assert props["mdp.verdict"] == "compatible" and props["mdp.exit_code"] == "0"
    assert props["mdp.core_version"] == "1.2.0"


def _cell(
    core: str, counts: Counts, *, expected: str | None = None, setup_error: str | None = None
) -> matrix.CellResult:
    contract = matrix.contract_result(
        core=core,
        python="3.11",
        core_version=None if setup_error else ("1.4.61" if core == "latest" else core),
        report=SuiteReport(counts=counts),
        setup_error=setup_error,
        expected_failure=expected,
    )
    return matrix.CellResult(contract)


@pytest.mark.parametrize(
    ("counts", "expected", "verdict", "as_expected"),
    [
        (Counts(passed=3), None, Verdict.COMPATIBLE, True),
        (Counts(passed=3, failed=1), None, Verdict.INCOMPATIBLE, False),
        (Counts(passed=3, failed=1), "Bar shadowed", Verdict.INCOMPATIBLE, True),
        (Counts(passed=3), "Bar shadowed", Verdict.COMPATIBLE, False),
        (Counts(passed=3, skipped=1), None, Verdict.INCOMPLETE, False),
    ],
)
def test_declared_expectations(
    counts: Counts, expected: str | None, verdict: Verdict, as_expected: bool
) -> None:
    cell = _cell("1.2.31", counts, expected=expected)
    assert cell.verdict is verdict and cell.as_expected is as_expected


def test_matrix_verdict_is_the_worst_unexpected_cell() -> None:
    ok, bad = _cell("1.2.0", Counts(passed=3)), _cell("1.2.30", Counts(passed=1, failed=1))
    declared = _cell("1.2.31", Counts(passed=1, failed=1), expected="Bar shadowed")
    stale = _cell("1.2.31", Counts(passed=3), expected="Bar shadowed")
    assert matrix.matrix_verdict([ok, declared]) is Verdict.COMPATIBLE
    assert matrix.matrix_verdict([ok, bad, declared]) is Verdict.INCOMPATIBLE
    assert matrix.matrix_verdict([ok, stale]) is Verdict.INCOMPATIBLE
    missing = _cell("9.9.9", Counts(), setup_error="market-data-core 9.9.9 is not on the index")
    assert matrix.matrix_verdict([ok, missing]) is Verdict.ERROR
    assert missing.contract.counts == Counts() and missing.verdict is not Verdict.INCOMPATIBLE


def _results() -> list[matrix.CellResult]:
    failing = matrix.contract_result(
        core="latest",
        python="3.11",
        core_version="1.4.61",
        report=SuiteReport(
            counts=Counts(passed=79, failed=1), failures=(Failure("test_x::t", "a|b"),)
        ),
    )
    return [
        _cell("1.2.0", Counts(passed=80)),
        matrix.CellResult(failing),
        _cell("1.2.0", Counts(), setup_error="Python 3.14 is not installed on this machine"),
    ]


def test_markdown_is_a_table_for_the_step_summary() -> None:
    text = report.matrix_markdown(_results(), 12.3)
    lines = text.splitlines()
    assert lines[0] == "## Core contract matrix"
    assert "incompatible** (exit 1)" in text
    rows = [line for line in lines if line.startswith("| 1.") or line.startswith("| latest")]
    assert len(rows) == 3
    assert all(row.count(" | ") == rows[0].count(" | ") for row in rows), "pipes escaped"
    assert "a\\|b" in text and "| 1.4.61 |" in text


def test_json_report_and_terminal_table(tmp_path: Path) -> None:
    report.write_reports(_results(), tmp_path, 3.0)
    data = json.loads((tmp_path / "matrix.json").read_text())
    assert (data["verdict"], data["exit_code"], data["as_expected"]) == ("incompatible", 1, False)
    assert [c["verdict"] for c in data["cells"]] == ["compatible", "incompatible", "error"]
    assert data["cells"][0]["counts"]["passed"] == 80
    console = Console(record=True, width=200)
    console.print(report.matrix_table(_results()))
    text = console.export_text()
    assert "Python 3.14 is not installed" in text and "1.4.61" in text


def test_result_markdown_names_the_verdict_and_first_failure() -> None:
    result = _results()[1].contract
    text = report.result_markdown(result, correlation_id="abc")
    assert "incompatible" in text and "`test_x::t`" in text and "`abc`" in text


def test_plan_cells_dedupes_and_rejects_empty() -> None:
    cells = matrix.plan_cells(["1.2.0", "1.2.0", "latest"], ["3.11"])
    assert [c.cell_id for c in cells] == ["core-1.2.0-py3.11", "core-latest-py3.11"]
    with pytest.raises(ContractsError):
        matrix.plan_cells([], ["3.11"])
