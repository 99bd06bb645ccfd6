"""The contract suite's one list of requirements, and ``mdp contracts run`` checking it first."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from market_data_contracts import settings, suite_env
from market_data_contracts.cli import contracts_app
from market_data_contracts.errors import ContractsError

ROOT = Path(__file__).resolve().parents[3]


def test_the_suites_requirements_are_the_extras_pyproject_names() -> None:
    conf = settings.load_settings(ROOT)
    assert "contracts" in conf.extras
    assert {"pytest>=8", "pytest-asyncio>=0.24", "pytest-timeout>=2.3"} <= set(conf.requirements)
    assert not any(r.startswith(("hypothesis", "pandas")) for r in conf.requirements)


def test_extras_naming_other_extras_are_flattened_and_unknown_ones_refused() -> None:
    project: dict[str, Any] = {
        "project": {
            "name": "market-data-pipeline",  # an extra naming the project's own extras
            "optional-dependencies": {
                "a": ["x>=1"],
                "b": ["market-data-pipeline[a]", "y"],
                "c": ["market-data-pipeline[b,a]", "x>=1"],
            },
        }
    }
    assert settings.extras_requirements(project, ("c",)) == ("x>=1", "y")
    with pytest.raises(ContractsError, match="'nope'"):
        settings.extras_requirements(project, ("a", "nope"))


def test_missing_requirements_name_what_is_absent_or_too_old() -> None:
    assert suite_env.missing_requirements(["pytest>=8"]) == []
    assert suite_env.missing_requirements(["no-such-distribution-mdp>=1"]) == [
        "no-such-distribution-mdp>=1"
    ]
    [too_old] = suite_env.missing_requirements(["pytest>=999"])
    assert too_old.startswith("pytest>=999 (found ")


def test_run_without_the_requirements_says_what_to_install_and_writes_an_error_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf = settings.load_settings(ROOT)
    lacking = dataclasses.replace(conf, requirements=("no-such-distribution-mdp>=1",))
    monkeypatch.setattr(settings, "load_settings", lambda: lacking)
    result = CliRunner().invoke(contracts_app, ["run", "--out", str(tmp_path)])
    assert result.exit_code == 4, result.output
    assert "no-such-distribution-mdp>=1" in result.output
    assert suite_env.install_command(conf.root, conf.extras) in result.output
    saved = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    assert saved["verdict"] == "error" and saved["pytest_exit_code"] is None
    assert not (tmp_path / "junit.xml").exists()
