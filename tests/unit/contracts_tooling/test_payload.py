"""One set of payload cases, run through both sides: the workflow's script and ``mdp contracts
dispatch``. A value is accepted by both or refused by both, newlines and non-ASCII included."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from market_data_contracts import cli, payload, settings

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(payload.__file__)
REPOSITORY = "github.com/acme/market-data-core"
GIT = f"git+https://{REPOSITORY}"

ACCEPTED: list[tuple[dict[str, Any], dict[str, str]]] = [
    (
        {"core_ref": "1.4.61", "correlation_id": "r-1"},
        {"core_ref": "1.4.61", "correlation_id": "r-1"},
    ),
    ({"core_ref": "latest", "correlation_id": "a.b_c"}, {"python_version": "3.11"}),
    (
        {"core_ref": "1.5.0rc1", "correlation_id": "x", "python_version": "3.12"},
        {"python_version": "3.12"},
    ),
    ({"core_ref": f"{GIT}@v1.4.61", "correlation_id": "x"}, {"core_ref": f"{GIT}@v1.4.61"}),
    ({"core_ref": f"{GIT}.git@0123abc", "correlation_id": "x"}, {}),
    (
        {"core_ref": "1.4.61", "core_repo": "acme/market-data-core", "core_sha": "ab" * 20},
        {"core_repo": "acme/market-data-core", "core_sha": "ab" * 20},
    ),
]
REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"core_ref": "v1.4.61"}, "is not a Core version"),
    ({"core_ref": "1.4.61 "}, "spaces"),
    ({"core_ref": ""}, "is not a Core version"),
    ({"core_ref": f"{GIT}"}, "@REF"),
    ({"core_ref": "git+https://evil.example/x@v1"}, "only Core's own repository"),
    ({"core_ref": "https://evil.example/x-1.0.tar.gz"}, "is not a Core version"),
    ({"core_ref": "git+ssh://github.com/acme/market-data-core@v1"}, "is not a Core version"),
    ({"core_ref": f"{GIT}@../../x"}, "is not a branch, tag or commit"),
    ({"core_ref": "latest\ncore_ref=https://evil.example/x-1.0.tar.gz"}, "control"),
    ({"core_ref": "1.4.61", "correlation_id": "ok\npython_version=3.99"}, "control"),
    ({"core_ref": "1.4.61", "correlation_id": "has space"}, "spaces"),
    ({"core_ref": "1.4.61", "correlation_id": "café"}, "non-ASCII"),
    ({"core_ref": "1.4.61", "python_version": "3.99.1"}, "not a Python version"),
    ({"core_ref": "1.4.61", "python_version": "3.12\n"}, "control"),
    ({"core_ref": "1.4.61", "core_repo": "acme/market-data-core"}, "go together"),
    ({"core_ref": "1.4.61", "core_repo": "evil/x", "core_sha": "a" * 40}, "not Core's repository"),
    ({"core_ref": "1.4.61", "core_repo": "acme/market-data-core", "core_sha": "A" * 40}, "hex"),
]


def _script(request: dict[str, Any] | str, tmp_path: Path) -> tuple[int, str, str]:
    event = tmp_path / "event.json"
    body = request if isinstance(request, str) else json.dumps({"client_payload": request})
    event.write_text(body, encoding="utf-8")
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f'[tool.mdp.contracts]\ncore-repository = "{REPOSITORY}"\n')
    output = tmp_path / "github_output"
    output.write_text("")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(event), "--github-output", str(output),
         "--pyproject", str(pyproject)],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    return done.returncode, done.stdout, output.read_text()


CLI_KEYS = {"core_ref", "correlation_id", "python_version"}


def _dispatch(request: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """Send ``request`` with ``mdp contracts dispatch --dry-run`` (the keys the CLI can set)."""
    conf = settings.ContractsSettings(root=ROOT, core_repository=REPOSITORY)
    monkeypatch.setattr(settings, "load_settings", lambda: conf)
    argv = ["dispatch", "--repo", "acme/pipeline", "--core-ref", request["core_ref"], "--dry-run"]
    if "correlation_id" in request:
        argv += ["--correlation-id", request["correlation_id"]]
    if "python_version" in request:
        argv += ["--python", request["python_version"]]
    result = CliRunner().invoke(cli.contracts_app, argv)
    return result.exit_code, result.output


@pytest.mark.parametrize(("request_", "expected"), ACCEPTED)
def test_both_sides_accept(
    request_: dict[str, Any],
    expected: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = payload.validate(request_, REPOSITORY)
    assert expected.items() <= values.items()
    code, stdout, written = _script(request_, tmp_path)
    assert code == 0, stdout
    lines = written.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == list(payload.OUTPUT_KEYS)
    assert dict(line.split("=", 1) for line in lines) == values
    if set(request_) <= CLI_KEYS:
        code, output = _dispatch(request_, monkeypatch)
        assert code == 0 and "would dispatch" in output, output


@pytest.mark.parametrize(("request_", "reason"), REFUSED)
def test_both_sides_refuse(
    request_: dict[str, Any], reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(payload.PayloadError, match=reason):
        payload.validate(request_, REPOSITORY)
    code, stdout, written = _script(request_, tmp_path)
    assert code == 2 and written == "", "nothing reaches $GITHUB_OUTPUT"
    assert stdout.startswith("::error::refused:") and stdout.count("\n") == 1, stdout
    if set(request_) <= CLI_KEYS:
        code, output = _dispatch(request_, monkeypatch)
        assert code == 2 and "would dispatch" not in output


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"client_payload": {"core_ref": "1.0", "core_ref": "latest"}}', "more than once"),
        ('{"client_payload": {"core_ref": "1.0", "version": "1.1"}}', "not both"),
        ('{"client_payload": {"core_ref": "1.0", "extra": "x"}}', "unknown key"),
        ('{"client_payload": {"core_ref": 5}}', "must be a JSON string"),
        ('{"client_payload": {}}', "core_ref is required"),
        ("not json", "not JSON"),
    ],
)
def test_the_script_refuses_malformed_requests(body: str, reason: str, tmp_path: Path) -> None:
    code, stdout, written = _script(body, tmp_path)
    assert code == 2 and reason in stdout and written == ""


def test_version_is_an_alias_and_git_needs_a_configured_repository() -> None:
    assert payload.validate({"version": "1.2.0"}, REPOSITORY)["core_ref"] == "1.2.0"
    with pytest.raises(payload.PayloadError, match="core-repository"):
        payload.validate({"core_ref": f"{GIT}@v1"}, "")


def test_workflow_dispatch_inputs_are_read(tmp_path: Path) -> None:
    event = {"inputs": {"core_ref": "1.2.30", "python_version": "3.12"}}
    request = payload.request_from_event(event, "workflow_dispatch")
    assert payload.validate(request, REPOSITORY)["python_version"] == "3.12"


def test_the_module_needs_only_the_standard_library() -> None:
    text = SCRIPT.read_text()
    assert "from ." not in text and "market_data_pipeline" not in text.split('"""', 2)[2]
