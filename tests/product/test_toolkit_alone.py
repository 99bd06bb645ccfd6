"""A sibling repository with the contract toolkit alone: no pipeline, no polars, pyarrow or numpy.

A fresh uv environment gets ``market-data-contracts`` from this checkout's ``packages/`` folder,
and nothing else. The sibling (``sibling/``: one Core RateController and the kit's checks for it,
written as another repository would write them) is installed beside it from a copy whose
``pyproject.toml`` points the toolkit at that folder, as a sibling working from a checkout
instead of the index would. Its suite then runs through ``mdp-contracts run``, and
``mdp-contracts matrix`` builds a cell of its own from the sibling's ``[tool.mdp.contracts]``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from .conftest import PYTHON, ROOT, clean_env, distributions, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

TOOLKIT = ROOT / "packages" / "market-data-contracts"
SIBLING = Path(__file__).parent / "sibling"
NEVER = {"polars", "pyarrow", "numpy", "market-data-pipeline"}
KIT_CHECKS = 6  # BaseRateControllerTests: 2 protocol checks, 3 levels, hard then ok


@pytest.fixture
def sibling(tmp_path: Path) -> Path:
    """A copy of ``sibling/`` that takes the toolkit from this checkout (editable)."""
    repo = tmp_path / "sibling"
    shutil.copytree(SIBLING, repo)
    with (repo / "pyproject.toml").open("a", encoding="utf-8") as handle:
        handle.write(
            "\n[tool.uv.sources]\n"
            f'market-data-contracts = {{ path = "{TOOLKIT}", editable = true }}\n'
        )
    return repo


def test_the_toolkit_alone_runs_a_siblings_kit_suite_and_its_matrix(
    tmp_path: Path, uv: str, sibling: Path
) -> None:
    env = {**clean_env(), "UV_PYTHON_DOWNLOADS": "never"}
    env["PATH"] = f"{Path(uv).parent}{os.pathsep}{env.get('PATH', '')}"  # matrix cells need uv
    venv = tmp_path / "venv"
    python, tool = venv / "bin" / "python", venv / "bin" / "mdp-contracts"
    pip = [uv, "pip", "install", "--quiet", "--python", str(python)]

    done = run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], env=env, timeout=120)
    assert done.returncode == 0, done.stdout
    done = run([*pip, "-e", str(TOOLKIT)], env=env, timeout=300)
    assert done.returncode == 0, done.stdout
    alone = distributions(python)
    assert "market-data-contracts" in alone
    assert not alone & (NEVER | {"market-data-core"}), alone
    assert run([str(tool), "--help"], env=env, timeout=60).returncode == 0

    done = run([*pip, "-e", f"{sibling}[contracts]"], cwd=sibling, env=env, timeout=300)
    assert done.returncode == 0, done.stdout
    assert not distributions(python) & NEVER

    out = tmp_path / "run"
    done = run([str(tool), "run", "--out", str(out)], cwd=sibling, env=env, timeout=300)
    assert done.returncode == 0, done.stdout
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert result["verdict"] == "compatible", result
    assert result["counts"]["passed"] == KIT_CHECKS and result["counts"]["skipped"] == 0

    matrix = tmp_path / "matrix"
    argv = [str(tool), "matrix", "--python", PYTHON, "--jobs", "1", "--out", str(matrix)]
    done = run(argv, cwd=sibling, env=env, timeout=450)
    assert done.returncode == 0, done.stdout
    cells = json.loads((matrix / "matrix.json").read_text(encoding="utf-8"))["cells"]
    assert [(c["core_version"], c["verdict"]) for c in cells] == [("1.4.61", "compatible")]
    assert cells[0]["counts"]["passed"] == KIT_CHECKS
    cell_python = matrix / "envs" / f"core-1.4.61-py{PYTHON}" / "bin" / "python"
    assert not distributions(cell_python) & NEVER
