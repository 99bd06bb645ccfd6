"""The reusable contracts workflow's own steps, run as GitHub runs them, in a fresh clone.

``workflow_runner`` (tests/support) runs ``_contracts_reusable.yml``'s job step by step: the
real ``run:`` scripts with ``bash -e``, GITHUB_OUTPUT/ENV/PATH/STEP_SUMMARY, the event file, the
inputs and secrets; Core is installed from the package index; the verdict is posted to a local
GitHub API stand-in, as Core's release gate would read it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from github_stub import Scripted
from workflow_runner import Runner, fresh_clone

from market_data_contracts import envs
from market_data_contracts.ledger import open_ledger

from .conftest import PYTHON, ROOT, need

pytestmark = [
    pytest.mark.slow,
    pytest.mark.redis,
    pytest.mark.postgres,
    pytest.mark.timeout(900),  # Core and the project installed from the index, then the suite
]

WORKFLOW = ROOT / ".github" / "workflows" / "_contracts_reusable.yml"
TOKEN = "ghs_a-token-that-must-never-be-printed"
CORE_REPO = "acme/market-data-core"
CORE_SHA = "0123456789abcdef0123456789abcdef01234567"
REPO = "acme/market-data-pipeline"


def test_reusable_workflow_runs_the_suite_and_reports_the_verdict_on_cores_commit(
    tmp_path: Path, github_api: tuple[str, Scripted], redis_url: str, postgres_url: str
) -> None:
    api_url, script = github_api
    script.responses = [(201, {}, {"state": "success"})]
    python = envs.find_python(PYTHON)
    need(f"Python {PYTHON}", python)
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    runner = Runner(
        workflow=WORKFLOW,
        job="contracts",
        workspace=fresh_clone(ROOT, tmp_path / "workspace"),
        inputs={
            "core_ref": "latest",
            "python_version": PYTHON,
            "correlation_id": "release-42",
            "core_repo": CORE_REPO,
            "core_sha": CORE_SHA,
        },
        secrets={"CORE_STATUS_TOKEN": TOKEN, "CONTRACTS_LEDGER_URL": ledger},
        github={"GITHUB_API_URL": api_url, "GITHUB_REPOSITORY": REPO},
        event_name="repository_dispatch",
        event={"action": "core-release", "client_payload": {"core_ref": "latest"}},
        pythons={PYTHON: str(python)},
        temp=tmp_path / "runner",
    )
    result = runner.run()

    assert result.succeeded, result.log[-6000:]
    assert [s.outcome for s in result.steps].count("skipped") == 0, result.log[-3000:]
    installed = result.outputs["core_installed"]
    assert (
        installed
        and installed == result.step("Install exactly the Core asked for").outputs["version"]
    )
    # The verdict, on Core's commit, with this repository's context and the token.
    [request] = script.requests
    assert request["path"] == f"/repos/{CORE_REPO}/statuses/{CORE_SHA}"
    assert request["body"]["state"] == "success", request["body"]
    assert request["body"]["context"] == f"contracts/{REPO}"
    assert "release-42" in request["body"]["description"]
    assert request["headers"]["Authorization"].endswith(TOKEN)
    assert TOKEN not in result.log and TOKEN not in result.summary
    # The step summary and the uploaded results say the same.
    assert "compatible" in result.summary and "release-42" in result.summary
    name = f"contracts-junit-core-latest-py{PYTHON}"
    folder = result.artifacts / name
    assert {"junit.xml", "result.json", "record.json"} <= {p.name for p in folder.iterdir()}
    outcome = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    assert outcome["verdict"] in ("compatible", "compatible_with_notices")
    assert outcome["core_version"] == installed and outcome["counts"]["passed"] > 0
    [record] = open_ledger(ledger).records()
    assert (record.repo, record.correlation_id, record.core_version) == (
        REPO,
        "release-42",
        installed,
    )
