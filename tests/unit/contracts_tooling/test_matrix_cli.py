"""``mdp contracts matrix`` end to end on a Python this machine does not have: a skipped cell."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from market_data_pipeline.cli.contracts import _matrix_exit_code, contracts_app
from market_data_pipeline.contracts import envs, matrix


def _matrix(tmp_path: Path, *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    argv = ["matrix", "--core", "1.2.0", "--python", "3.99", "--out", str(tmp_path), *extra]
    result = CliRunner().invoke(contracts_app, argv)
    return result.exit_code, json.loads((tmp_path / "matrix.json").read_text())


def test_missing_python_gives_a_skipped_cell_and_exit_2(tmp_path: Path) -> None:
    assert envs.find_python("3.99") is None
    code, data = _matrix(tmp_path)
    assert code == 2
    [cell] = data["cells"]
    assert cell["state"] == "skipped" and "3.99 is not installed" in cell["reason"]
    assert (tmp_path / "matrix.md").read_text().startswith("## Core contract matrix")


def test_a_matrix_where_no_cell_ran_fails_even_when_missing_pythons_are_allowed(
    tmp_path: Path,
) -> None:
    code, data = _matrix(tmp_path, "--allow-missing-python")
    assert code == 2 and [c["state"] for c in data["cells"]] == ["skipped"]


def _result(python: str, state: matrix.CellState) -> matrix.CellResult:
    return matrix.CellResult("1.2.0", python, state)


def test_missing_python_is_allowed_only_when_asked() -> None:
    results = [_result("3.11", "passed"), _result("3.99", "skipped")]
    assert _matrix_exit_code(results, allow_missing_python=False) == 2
    assert _matrix_exit_code(results, allow_missing_python=True) == 0
    assert _matrix_exit_code([_result("3.11", "failed")], allow_missing_python=True) == 1


def test_core_requirement_forms() -> None:
    assert envs.core_requirement("1.2.30") == "market-data-core==1.2.30"
    assert envs.core_requirement("latest") == "market-data-core"
    assert envs.core_requirement("git+https://example.invalid/core@v1") == (
        "market-data-core @ git+https://example.invalid/core@v1"
    )


def test_matrix_records_every_cell_in_the_ledger(tmp_path: Path) -> None:
    from market_data_pipeline.contracts.ledger import open_ledger
    from market_data_pipeline.contracts.verdict import Verdict

    url = f"sqlite:///{tmp_path / 'c.db'}"
    code, _ = _matrix(tmp_path, "--ledger", url, "--repo", "acme/pipeline")
    assert code == 2
    [record] = open_ledger(url).records()
    assert (record.repo, record.python, record.verdict) == ("acme/pipeline", "3.99", Verdict.ERROR)
    assert "3.99 is not installed" in (record.result.reason or "")
