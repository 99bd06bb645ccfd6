"""Commit statuses on Core's release commit, against a local server answering as GitHub does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from market_data_contracts import github
from market_data_contracts.cli import contracts_app
from market_data_contracts.errors import ContractsError
from market_data_contracts.verdict import Verdict

from .conftest import Scripted
from .records_helpers import make_record

TOKEN = "ghp_status_token_abcdef123456"
SHA = "3f2a9c1" + "0" * 33


def client(url: str) -> github.GitHubClient:
    return github.GitHubClient(TOKEN, api_url=url, attempts=3, sleep=lambda _s: None)


@pytest.mark.parametrize(
    ("verdict", "state"),
    [
        (Verdict.COMPATIBLE, "success"),
        (Verdict.COMPATIBLE_WITH_NOTICES, "success"),
        (Verdict.INCOMPATIBLE, "failure"),
        (Verdict.INCOMPLETE, "error"),
        (Verdict.ERROR, "error"),
    ],
)
def test_posts_the_documented_status(
    github_api: tuple[str, Scripted], verdict: Verdict, state: str
) -> None:
    url, script = github_api
    script.responses = [(201, {}, {"id": 1})]
    status = github.status_for(make_record(verdict=verdict, correlation_id="rel-42"))
    assert github.post_status(client(url), "acme/market-data-core", SHA, status) == 1
    [request] = script.requests
    assert request["path"] == f"/repos/acme/market-data-core/statuses/{SHA}"
    body = request["body"]
    assert body["state"] == state and body["context"] == "contracts/acme/pipeline"
    assert body["target_url"] == "https://github.com/acme/pipeline/actions/runs/1"
    assert "90 passed" in body["description"] and "rel-42" in body["description"]
    assert len(body["description"]) <= github.MAX_DESCRIPTION_CHARS
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    ("status", "cause"),
    [
        (401, "invalid or expired"),
        (403, "may not write commit statuses"),
        (404, "does not exist"),
        (422, "rejected the status"),
    ],
)
def test_final_failures_say_why_and_are_not_retried(
    github_api: tuple[str, Scripted], status: int, cause: str
) -> None:
    url, script = github_api
    script.responses = [(status, {}, {"message": f"echo {TOKEN}"})]
    with pytest.raises(github.GitHubError, match=cause) as info:
        github.post_status(client(url), "acme/core", SHA, github.status_for(make_record()))
    assert len(script.requests) == 1 and info.value.status == status
    assert TOKEN not in str(info.value)


def test_5xx_is_retried(github_api: tuple[str, Scripted]) -> None:
    url, script = github_api
    script.responses = [(502, {}, None), (201, {}, {})]
    assert github.post_status(client(url), "acme/core", SHA, github.status_for(make_record())) == 2


def test_a_redirect_is_not_followed(github_api: tuple[str, Scripted]) -> None:
    url, script = github_api
    script.responses = [(307, {"Location": "http://127.0.0.1:1/steal"}, None)]
    with pytest.raises(github.GitHubError, match="redirect"):
        github.post_status(client(url), "acme/core", SHA, github.status_for(make_record()))
    assert len(script.requests) == 1


def test_a_status_still_rate_limited_after_retries_says_so(
    github_api: tuple[str, Scripted],
) -> None:
    url, script = github_api
    script.responses = [(403, {}, {"message": "You have exceeded a secondary rate limit"})]
    with pytest.raises(github.GitHubError, match="still limited after retries") as info:
        github.post_status(client(url), "acme/core", SHA, github.status_for(make_record()))
    assert len(script.requests) == 3 and "secondary rate limit" in str(info.value)


def test_a_success_other_than_201_is_a_failure_that_names_both(
    github_api: tuple[str, Scripted],
) -> None:
    url, script = github_api
    script.responses = [(200, {}, {})]
    with pytest.raises(github.GitHubError, match="HTTP 200, not 201"):
        github.post_status(client(url), "acme/core", SHA, github.status_for(make_record()))


def test_the_token_goes_only_to_an_https_or_loopback_api() -> None:
    with pytest.raises(ContractsError, match="refusing to send the token"):
        github.GitHubClient(TOKEN, api_url="http://api.example.com")
    assert TOKEN not in repr(github.GitHubClient(TOKEN))


def test_bad_repository_or_sha_is_refused_before_sending(github_api: tuple[str, Scripted]) -> None:
    url, script = github_api
    status = github.status_for(make_record())
    with pytest.raises(ContractsError, match="commit SHA"):
        github.post_status(client(url), "acme/core", "main", status)
    with pytest.raises(ContractsError, match="OWNER/NAME"):
        github.post_status(client(url), "acme/core/x", SHA, status)
    assert script.requests == []


def test_cli_report_posts_the_record_of_a_run(
    github_api: tuple[str, Scripted], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, script = github_api
    script.responses = [(201, {}, {})]
    (tmp_path / "record.json").write_text(json.dumps(make_record().to_json()), encoding="utf-8")
    monkeypatch.setenv("REPO_TOKEN", TOKEN + "\n")
    args = ["report", "--core-repo", "acme/core", "--sha", SHA, "--from", str(tmp_path)]
    result = CliRunner().invoke(contracts_app, [*args, "--api-url", url])
    assert result.exit_code == 0, result.output
    assert "contracts/acme/pipeline = success" in result.output and TOKEN not in result.output
    script.responses = [(403, {}, {"message": "Resource not accessible by integration"})]
    refused = CliRunner().invoke(contracts_app, [*args, "--api-url", url])
    assert refused.exit_code == 1
    assert "may not write commit statuses" in " ".join(refused.output.split())
    assert TOKEN not in refused.output


def test_cli_report_without_a_record_or_token_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REPO_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    args = ["report", "--core-repo", "acme/core", "--sha", SHA, "--from", str(tmp_path)]
    missing = CliRunner().invoke(contracts_app, args)
    assert missing.exit_code == 2 and "no record" in " ".join(missing.output.split())
    (tmp_path / "record.json").write_text(json.dumps(make_record().to_json()), encoding="utf-8")
    no_token = CliRunner().invoke(contracts_app, args)
    assert no_token.exit_code == 2 and "REPO_TOKEN" in " ".join(no_token.output.split())


def test_cli_report_posts_an_error_status_when_the_run_left_no_record(
    github_api: tuple[str, Scripted], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, script = github_api
    script.responses = [(201, {}, {})]
    monkeypatch.setenv("REPO_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/pipeline")
    monkeypatch.setenv("MDP_CORRELATION_ID", "rel-9")
    args = ["report", "--core-repo", "acme/core", "--sha", SHA, "--from", str(tmp_path)]
    result = CliRunner().invoke(contracts_app, [*args, "--api-url", url, "--missing-as-error"])
    assert result.exit_code == 0, result.output
    [request] = script.requests
    assert request["body"]["state"] == "error"
    assert request["body"]["context"] == "contracts/acme/pipeline"
    assert "rel-9" in request["body"]["description"]
