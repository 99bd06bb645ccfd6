"""``mdp contracts run`` from the quickstart environment says exactly what to install.

The quickstart (``scripts/dev.py run``) installs the project with its postgres and redis extras,
not the contract suite's runner: the command must name the missing requirements and the exact
install command (exit 4, the *error* verdict, written to result.json like any other run), rather
than pytest's ``No module named pytest``.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from market_data_contracts.settings import load_settings

from .conftest import PYTHON, ROOT, clean_env, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_contracts_run_without_the_suites_requirements_names_the_install_command(
    tmp_path: Path, uv: str
) -> None:
    env_dir = tmp_path / "quickstart"
    made = run([uv, "venv", "--quiet", "--python", PYTHON, str(env_dir)], timeout=120)
    assert made.returncode == 0, made.stdout
    python = env_dir / "bin" / "python"
    install = [uv, "pip", "install", "--quiet", "--python", str(python)]
    done = run([*install, "-e", f"{ROOT}[postgres,redis]"], env=clean_env(), timeout=600)
    assert done.returncode == 0, done.stdout

    out = tmp_path / "out"
    done = run([str(env_dir / "bin" / "mdp"), "contracts", "run", "--out", str(out)], timeout=120)

    assert done.returncode == 4, done.stdout
    assert "No module named" not in done.stdout
    extras = ",".join(load_settings(ROOT).extras)
    command = f"uv pip install --python {shlex.quote(str(python))} -e "
    command += shlex.quote(f"{ROOT}[{extras}]")
    assert command in done.stdout.replace("\n", " "), done.stdout
    assert "pytest>=8" in done.stdout
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert result["verdict"] == "error" and "uv pip install" in result["reason"]
