"""``mdp contracts matrix`` end to end on a Python this machine does not have: a skipped cell."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from market_data_contracts import envs, matrix
from market_data_contracts.cli import contracts_app
from market_data_contracts.cli.commands import _matrix_exit_code
from market_data_contracts.junit import SuiteReport
from market_data_contracts.verdict import Counts, Verdict


def _matrix(tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    argv = ["matrix", "--core", "1.2.0", "--python", "3.99", "--out", str(tmp_path), *extra]
    result = CliRunner().invoke(contracts_app, argv)
    return result.exit_code, json.loads((tmp_path / "matrix.json").read_text())


def test_missing_python_gives_an_error_cell_and_exit_4(tmp_path: Path) -> None:
    assert envs.find_python("3.99") is None
    code, data = _matrix(tmp_path)
    assert code == Verdict.ERROR.exit_code == 4
    [cell] = data["cells"]
    assert cell["verdict"] == "error" and "3.99 is not installed" in cell["reason"]
    assert data["verdict"] == "error"
    assert (tmp_path / "matrix.md").read_text().startswith("## Core contract matrix")


def test_a_matrix_where_no_cell_ran_fails_even_when_missing_pythons_are_allowed(
    tmp_path: Path,
) -> None:
    code, data = _matrix(tmp_path, "--allow-missing-python")
    assert code == 4 and [c["verdict"] for c in data["cells"]] == ["error"]


def _result(python: str, counts: Counts, setup_error: str | None = None) -> matrix.CellResult:
    contract = matrix.contract_result(
        core="1.2.0",
        python=python,
        core_version="1.2.0",
        report=SuiteReport(counts=counts),
        setup_error=setup_error,
    )
    return matrix.CellResult(contract)


def test_missing_python_is_allowed_only_when_asked() -> None:
    missing = "Python 3.99 is not installed on this machine"
    results = [_result("3.11", Counts(passed=3)), _result("3.99", Counts(), missing)]
    assert _matrix_exit_code(results, allow_missing_python=False) == 4
    assert _matrix_exit_code(results, allow_missing_python=True) == 0
    failed = [_result("3.11", Counts(passed=1, failed=1))]
    assert _matrix_exit_code(failed, allow_missing_python=True) == 1


def test_core_requirement_forms() -> None:
    assert envs.core_requirement("1.2.30") == "market-data-core==1.2.30"
    assert envs.core_requirement("latest") == "market-data-core"
    assert envs.core_requirement("git+https://example.invalid/core@v1") == (
        "market-data-core @ git+https://example.invalid/core@v1"
    )


def test_matrix_records_every_cell_in_the_ledger(tmp_path: Path) -> None:
    from market_data_contracts.ledger import open_ledger
    from market_data_contracts.verdict import Verdict

    url = f"sqlite:///{tmp_path / 'c.db'}"
    code, _ = _matrix(tmp_path, "--ledger", url, "--repo", "acme/pipeline")
    assert code == Verdict.ERROR.exit_code
    [record] = open_ledger(url).records()
    assert (record.repo, record.python, record.verdict) == ("acme/pipeline", "3.99", Verdict.ERROR)
    assert "3.99 is not installed" in (record.result.reason or "")
