"""``mdp contracts matrix`` end to end on a Python this machine does not have: a skipped cell."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from market_data_pipeline.cli.contracts import contracts_app
from market_data_pipeline.contracts import envs


def test_missing_python_gives_a_skipped_cell_not_a_crash(tmp_path: Path) -> None:
    assert envs.find_python("3.99") is None
    result = CliRunner().invoke(
        contracts_app, ["matrix", "--core", "1.2.0", "--python", "3.99", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "matrix.json").read_text())
    [cell] = data["cells"]
    assert cell["state"] == "skipped" and "3.99 is not installed" in cell["reason"]
    assert (tmp_path / "matrix.md").read_text().startswith("## Core contract matrix")


def test_core_requirement_forms() -> None:
    assert envs.core_requirement("1.2.30") == "market-data-core==1.2.30"
    assert envs.core_requirement("latest") == "market-data-core"
    assert envs.core_requirement("git+https://example.invalid/core@v1") == (
        "market-data-core @ git+https://example.invalid/core@v1"
    )
