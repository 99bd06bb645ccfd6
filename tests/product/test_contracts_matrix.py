"""A real ``mdp contracts matrix``: two Core releases, each in a fresh uv environment.

Each cell's environment holds only Core, this project and the extras ``[tool.mdp.contracts]
extras`` names (the suite's one list of requirements), resolved from the package index; the
suite passing there proves it imports nothing outside that list.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from market_data_contracts import envs
from market_data_contracts.settings import load_settings

from .conftest import PYTHON, ROOT, clean_env, distributions, run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.timeout(900),  # two environments resolved from the index, two suites
]

CORES = ("1.2.11", "latest")
# Installed for development (pyproject's dev extra) but never needed by the contract suite.
DEV_ONLY = ("hypothesis", "pandas", "ruff", "mypy", "playwright")


def test_matrix_of_two_core_releases_passes_in_fresh_environments(
    tmp_path: Path, uv: str, redis_url: str, postgres_url: str
) -> None:
    out = tmp_path / "matrix"
    mdp = [sys.executable, "-m", "market_data_pipeline.cli"]
    argv = [*mdp, "contracts", "matrix", "--core", ",".join(CORES), "--python", PYTHON]
    done = run([*argv, "--jobs", "2", "--out", str(out)], env=clean_env(), timeout=600)
    data = json.loads((out / "matrix.json").read_text(encoding="utf-8"))
    cells = {cell["core_requested"]: cell for cell in data["cells"]}
    logs = "\n".join(p.read_text(encoding="utf-8")[-1500:] for p in sorted(out.glob("*.log")))
    assert done.returncode == 0, f"{done.stdout}\n{logs}"
    assert set(cells) == set(CORES)
    for core, cell in cells.items():
        assert cell["verdict"] in ("compatible", "compatible_with_notices"), (core, cell["reason"])
        assert cell["counts"]["passed"] > 0 and cell["counts"]["failed"] == 0, cell
    assert cells["1.2.11"]["core_version"] == "1.2.11"
    extras = load_settings(ROOT).extras
    for core in CORES:
        python = out / "envs" / f"core-{core}-py{PYTHON}" / "bin" / "python"
        installed = distributions(python)
        assert "market-data-core" in installed and "pytest" in installed
        assert not installed & set(DEV_ONLY), f"{core}: the cell holds more than {extras}"
    assert envs.installed_core(out / "envs" / f"core-latest-py{PYTHON}" / "bin" / "python")
