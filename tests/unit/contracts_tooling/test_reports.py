"""JUnit reading, cell classification and the matrix reports (JSON, Markdown, terminal table)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from market_data_pipeline.contracts import matrix, report
from market_data_pipeline.contracts.errors import ContractsError
from market_data_pipeline.contracts.junit import SuiteCounts, read_junit
from market_data_pipeline.contracts.settings import ContractsSettings, ExpectedFailure

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" time="1.5">
  <testcase classname="tests.contracts.test_a" name="test_ok" time="0.1"/>
  <testcase classname="tests.contracts.test_a" name="test_bad" time="0.1">
    <failure message="AssertionError: Bar schema changed&#10;more">trace</failure></testcase>
  <testcase classname="tests.contracts.test_b" name="test_err" time="0.1">
    <error message="fixture exploded">trace</error></testcase>
  <testcase classname="tests.contracts.test_b" name="test_x" time="0.1">
    <skipped type="pytest.xfail" message="known Core defect"/></testcase>
  <testcase classname="tests.contracts.test_b" name="test_s" time="0.1">
    <skipped type="pytest.skip" message="no redis"/></testcase>
</testsuite></testsuites>
"""


def test_read_junit_counts_and_first_failure(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(JUNIT)
    counts = read_junit(path)
    assert (counts.passed, counts.failed, counts.errors, counts.xfailed, counts.skipped) == (
        1,
        1,
        1,
        1,
        1,
    )
    assert counts.first_failure == "test_a::test_bad: AssertionError: Bar schema changed"
    assert not counts.ok and counts.total == 5


def test_missing_junit_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ContractsError):
        read_junit(tmp_path / "absent.xml")


def _settings(tmp_path: Path) -> ContractsSettings:
    return ContractsSettings(
        root=tmp_path, expected_failures=(ExpectedFailure("1.2.31", "Bar shadowed"),)
    )


@pytest.mark.parametrize(
    ("core", "state", "expected_state", "as_expected"),
    [
        ("1.2.30", "passed", "passed", True),
        ("1.2.30", "failed", "failed", False),
        ("1.2.31", "failed", "expected-failure", True),
        ("1.2.31", "passed", "unexpected-pass", False),
    ],
)
def test_classify_applies_declared_expectations(
    tmp_path: Path, core: str, state: matrix.CellState, expected_state: str, as_expected: bool
) -> None:
    result = matrix.classify(matrix.CellResult(core, "3.11", state), _settings(tmp_path))
    assert result.state == expected_state and result.as_expected is as_expected


def _results() -> list[matrix.CellResult]:
    return [
        matrix.CellResult("1.2.0", "3.11", "passed", "1.2.0", SuiteCounts(passed=80, xfailed=6)),
        matrix.CellResult(
            "latest", "3.11", "failed", "1.4.61", SuiteCounts(passed=79, failed=1), "x: a|b"
        ),
        matrix.CellResult("1.2.0", "3.14", "skipped", reason="Python 3.14 is not installed"),
    ]


def test_markdown_is_a_table_for_the_step_summary() -> None:
    text = report.matrix_markdown(_results(), 12.3)
    lines = text.splitlines()
    assert lines[0] == "## Core contract matrix"
    assert "some cells NOT as expected" in text
    rows = [line for line in lines if line.startswith("| 1.") or line.startswith("| latest")]
    assert len(rows) == 3
    assert all(row.count(" | ") == rows[0].count(" | ") for row in rows), "pipes escaped"
    assert "x: a\\|b" in text and "| 1.4.61 |" in text


def test_json_report_and_terminal_table(tmp_path: Path) -> None:
    report.write_reports(_results(), tmp_path, 3.0)
    data = json.loads((tmp_path / "matrix.json").read_text())
    assert data["as_expected"] is False
    assert [c["state"] for c in data["cells"]] == ["passed", "failed", "skipped"]
    assert data["cells"][0]["counts"]["xfailed"] == 6
    console = Console(record=True, width=200)
    console.print(report.matrix_table(_results()))
    text = console.export_text()
    assert "Python 3.14 is not installed" in text and "1.4.61" in text


def test_plan_cells_dedupes_and_rejects_empty() -> None:
    cells = matrix.plan_cells(["1.2.0", "1.2.0", "latest"], ["3.11"])
    assert [c.cell_id for c in cells] == ["core-1.2.0-py3.11", "core-latest-py3.11"]
    with pytest.raises(ContractsError):
        matrix.plan_cells([], ["3.11"])
