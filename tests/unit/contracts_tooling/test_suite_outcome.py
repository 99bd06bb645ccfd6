"""A cell or ``mdp contracts run`` passes only when pytest ran and passed in this very run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from market_data_contracts import envs, matrix
from market_data_contracts.cli import contracts_app
from market_data_contracts.junit import judge_suite
from market_data_contracts.settings import ContractsSettings
from market_data_contracts.verdict import Verdict

PASSING_JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" time="0.1">
  <testcase classname="tests.contracts.test_a" name="test_ok" time="0.1"/>
</testsuite></testsuites>
"""
FAILING_JUNIT = PASSING_JUNIT.replace(
    'time="0.1"/>', 'time="0.1"><failure message="boom">trace</failure></testcase>'
)


def _write(path: Path, text: str, age_s: float = 0.0) -> Path:
    path.write_text(text, encoding="utf-8")
    if age_s:
        stamp = time.time() - age_s
        os.utime(path, (stamp, stamp))
    return path


def test_exit_0_with_a_fresh_passing_report_passes(tmp_path: Path) -> None:
    started = time.time()
    suite, reason = judge_suite(0, _write(tmp_path / "j.xml", PASSING_JUNIT), started)
    assert reason is None and suite.counts.passed == 1


@pytest.mark.parametrize(
    ("code", "text", "age_s", "expected"),
    [
        (4, PASSING_JUNIT, 0.0, "pytest exited 4: usage error"),
        (2, PASSING_JUNIT, 0.0, "interrupted"),
        (5, PASSING_JUNIT, 0.0, "no tests were collected"),
        (0, PASSING_JUNIT, 3600.0, "without writing a JUnit report"),
        (1, FAILING_JUNIT, 0.0, "test_a::test_ok: boom"),
        (None, PASSING_JUNIT, 0.0, "timed out"),
    ],
    ids=["usage error", "interrupted", "nothing collected", "stale report", "failure", "timeout"],
)
def test_anything_but_a_fresh_pass_fails_with_a_reason(
    tmp_path: Path, code: int | None, text: str, age_s: float, expected: str
) -> None:
    junit = _write(tmp_path / "j.xml", text, age_s)
    suite, error = judge_suite(code, junit, time.time())
    result = matrix.contract_result(
        core="1.2.0", python="3.11", core_version="1.2.0", report=suite, suite_error=error
    )
    assert not result.verdict.passed
    assert result.reason is not None and expected in result.reason


def test_missing_report_fails(tmp_path: Path) -> None:
    _, reason = judge_suite(0, tmp_path / "absent.xml", time.time())
    assert reason == "pytest exited 0, without writing a JUnit report"


def _cell_run(tmp_path: Path, suite: str) -> tuple[matrix.CellResult, Path]:
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    contracts: x\n")
    out = tmp_path / "out"
    out.mkdir()
    cell = matrix.Cell("1.2.0", "3.11")
    stale = _write(out / f"junit-{cell.cell_id}.xml", PASSING_JUNIT)
    env = envs.CellEnv(path=Path(sys.prefix), python=Path(sys.executable), core_version="1.2.0")
    settings = ContractsSettings(root=tmp_path, suite=suite)
    log = out / "cell.log"
    log.write_text("")
    return matrix._run_suite(settings, cell, env, out, log, None), stale


def test_cell_where_pytest_never_ran_fails_despite_a_stale_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def usage_error(argv: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 4)

    monkeypatch.setattr("market_data_contracts.matrix.subprocess.run", usage_error)
    result, stale = _cell_run(tmp_path, "suite")
    assert result.verdict is Verdict.ERROR
    assert (
        result.contract.reason
        == "pytest exited 4: usage error (bad arguments), without writing a JUnit report"
    )
    assert not stale.exists() and result.junit is None


def test_cell_with_a_failing_test_reports_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # a bare suite starts faster
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_x.py").write_text(
        "import pytest\npytestmark = pytest.mark.contracts\n"
        "def test_good():\n    pass\n"
        "def test_bad():\n    assert 1 == 2\n"
    )
    result, _ = _cell_run(tmp_path, "suite")
    counts = result.contract.counts
    assert result.verdict is Verdict.INCOMPATIBLE and (counts.passed, counts.failed) == (1, 1)
    assert result.contract.reason is not None and "test_bad" in result.contract.reason


def test_environment_of_a_cell_never_records_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MDP_UPDATE_SNAPSHOTS", "1")
    env = envs.CellEnv(path=Path("/x"), python=Path("/x/bin/python"), core_version="1")
    assert "MDP_UPDATE_SNAPSHOTS" not in matrix.cell_environment(env)


def test_run_command_with_a_bad_pytest_flag_fails_and_says_why(tmp_path: Path) -> None:
    _write(tmp_path / "junit.xml", PASSING_JUNIT)
    result = CliRunner().invoke(
        contracts_app, ["run", "--out", str(tmp_path), "--", "--bogus-flag"]
    )
    assert result.exit_code == 4
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["verdict"] == "error" and "usage error" in data["reason"]
    assert data["counts"]["passed"] == 0
