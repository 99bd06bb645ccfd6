"""The repository_dispatch sender against a local server: payload, limits, retries, messages."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from market_data_contracts import dispatch, github
from market_data_contracts.cli import contracts_app
from market_data_contracts.errors import ContractsError, DispatchError

from .conftest import Scripted

TOKEN = "ghp_secret_token_value_1234567890"


def client(url: str, waits: list[float] | None = None) -> dispatch.DispatchClient:
    sleeps = waits if waits is not None else []
    return dispatch.DispatchClient(TOKEN, api_url=url, attempts=4, sleep=sleeps.append)


def test_sends_the_documented_request(github: tuple[str, Scripted]) -> None:
    url, script = github
    payload = dispatch.build_payload("1.2.30", "corr-1")
    assert client(url).dispatch("acme/pipeline", payload) == 1
    [request] = script.requests
    assert request["path"] == "/repos/acme/pipeline/dispatches"
    assert request["body"] == {
        "event_type": "core-release",
        "client_payload": {"core_ref": "1.2.30", "correlation_id": "corr-1"},
    }
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["Accept"] == "application/vnd.github+json"
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["x-github-api-version"] == "2022-11-28"


def test_a_correlation_id_is_always_present() -> None:
    first, second = dispatch.build_payload("1.2.0"), dispatch.build_payload("1.2.0")
    assert first["correlation_id"] and first["correlation_id"] != second["correlation_id"]


@pytest.mark.parametrize(
    ("payload", "repo", "event"),
    [
        ({f"k{i}": i for i in range(11)}, "a/b", "core-release"),
        ({"big": "x" * 70_000}, "a/b", "core-release"),
        ({}, "not-a-repo", "core-release"),
        ({}, "a/b", "x" * 101),
    ],
    ids=["11 keys", "over 64 KB", "bad repo name", "long event type"],
)
def test_limits_are_checked_before_sending(
    payload: dict[str, object], repo: str, event: str
) -> None:
    with pytest.raises(ContractsError):
        dispatch.check_request(repo, event, payload)


def test_ten_keys_are_allowed() -> None:
    assert dispatch.check_request("a/b", "core-release", {f"k{i}": i for i in range(10)})


def test_retries_5xx_then_succeeds(github: tuple[str, Scripted]) -> None:
    url, script = github
    script.responses = [(502, {}, None), (503, {}, None), (204, {}, None)]
    waits: list[float] = []
    assert client(url, waits).dispatch("a/b", {"core_ref": "1"}) == 3
    assert waits == [1.0, 2.0]  # exponential backoff


def test_429_honours_retry_after(github: tuple[str, Scripted]) -> None:
    url, script = github
    script.responses = [(429, {"Retry-After": "7"}, None), (204, {}, None)]
    waits: list[float] = []
    client(url, waits).dispatch("a/b", {"core_ref": "1"})
    assert waits == [7.0]


def test_secondary_rate_limit_waits_for_reset() -> None:
    from email.message import Message

    headers = Message()
    headers["x-ratelimit-remaining"] = "0"
    headers["x-ratelimit-reset"] = "1010"
    assert github.retry_delay(403, headers, 1, 1.0, now=1000.0) == 11.0


@pytest.mark.parametrize(
    ("status", "cause"),
    [(401, "expired"), (403, "permission"), (404, "spelling"), (422, "payload")],
)
def test_final_failures_name_repo_and_cause(
    github: tuple[str, Scripted], status: int, cause: str
) -> None:
    url, script = github
    script.responses = [(status, {}, {"message": "Nope"})]
    with pytest.raises(DispatchError) as info:
        client(url).dispatch("acme/pipeline", {"core_ref": "1"})
    text = str(info.value)
    assert "acme/pipeline" in text and cause in text and "Nope" in text
    assert TOKEN not in text
    assert len(script.requests) == 1  # not retried


def test_gives_up_after_the_attempts(github: tuple[str, Scripted]) -> None:
    url, script = github
    script.responses = [(500, {}, None)]
    with pytest.raises(DispatchError, match="HTTP 500"):
        client(url).dispatch("a/b", {"core_ref": "1"})
    assert len(script.requests) == 4


def test_cli_summarises_per_repository_without_leaking_the_token(
    github: tuple[str, Scripted], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, script = github
    script.responses = [(204, {}, None), (404, {}, {"message": "Not Found"})]
    monkeypatch.setenv("REPO_TOKEN", TOKEN)
    result = CliRunner().invoke(
        contracts_app,
        ["dispatch", "--repo", "acme/one,acme/two", "--core-ref", "1.2.30", "--api-url", url],
    )
    assert result.exit_code == 1
    assert "acme/one: dispatched" in result.output
    assert "acme/two" in result.output and "spelling" in result.output
    assert "1 dispatched, 1 failed" in result.output
    assert TOKEN not in result.output and TOKEN not in repr(client(url))


def test_cli_dry_run_sends_nothing(github: tuple[str, Scripted]) -> None:
    url, script = github
    result = CliRunner().invoke(
        contracts_app,
        ["dispatch", "--repo", "acme/one", "--core-ref", "1.2.0", "--api-url", url, "--dry-run"],
    )
    assert result.exit_code == 0, result.output
    assert "would dispatch" in result.output and script.requests == []


def test_cli_without_a_token_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REPO_TOKEN", raising=False)
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    result = CliRunner().invoke(contracts_app, ["dispatch", "--repo", "a/b", "--core-ref", "1"])
    assert result.exit_code == 2
    assert "REPO_TOKEN" in result.output


def test_a_trailing_newline_in_the_token_is_stripped(github: tuple[str, Scripted]) -> None:
    url, script = github
    slept: list[float] = []
    sender = dispatch.DispatchClient(TOKEN + "\n", api_url=url, sleep=slept.append)
    assert sender.dispatch("a/b", {"core_ref": "1"}) == 1
    assert script.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("token", [f"{TOKEN}\nx", f"ghp {TOKEN}", f"{TOKEN}\x7f"])
def test_an_unusable_token_is_refused_without_printing_it(
    monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("REPO_TOKEN", token)
    result = CliRunner().invoke(contracts_app, ["dispatch", "--repo", "a/b", "--core-ref", "1"])
    assert result.exit_code == 2 and "control characters" in result.output
    assert TOKEN not in result.output and isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_never_followed_and_fails(github: tuple[str, Scripted], status: int) -> None:
    url, script = github
    script.responses = [(status, {"Location": f"{url}/elsewhere"}, None)]
    with pytest.raises(DispatchError, match="moved or renamed") as info:
        client(url).dispatch("acme/pipeline", {"core_ref": "1"})
    assert [r["path"] for r in script.requests] == ["/repos/acme/pipeline/dispatches"]
    assert info.value.status == status and TOKEN not in str(info.value)


def test_only_204_is_success(github: tuple[str, Scripted]) -> None:
    url, script = github
    script.responses = [(200, {}, None)]
    with pytest.raises(DispatchError, match="not 204"):
        client(url).dispatch("a/b", {"core_ref": "1"})


BROKEN_STATUS_LINE = b"HTTP/1.1 2O4 OK\r\n\r\n"


def test_a_malformed_answer_fails_that_repository_only(github: tuple[str, Scripted]) -> None:
    url, script = github
    script.responses = [BROKEN_STATUS_LINE] * 4 + [(204, {}, None)]
    waits: list[float] = []
    results = client(url, waits).dispatch_all(["acme/one", "acme/two"], {"core_ref": "1"})
    assert [(r.ok, r.attempts) for r in results] == [(False, 4), (True, 1)]
    assert "connection failed" in results[0].message and TOKEN not in results[0].message
    assert waits == [1.0, 2.0, 4.0]


def test_cli_goes_on_after_a_malformed_answer(
    github: tuple[str, Scripted], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, script = github
    script.responses = [BROKEN_STATUS_LINE] * 5 + [(204, {}, None)]
    monkeypatch.setenv("REPO_TOKEN", TOKEN + "\n")
    monkeypatch.setattr("market_data_contracts.dispatch.time.sleep", lambda seconds: None)
    result = CliRunner().invoke(
        contracts_app,
        ["dispatch", "--repo", "acme/one,acme/two", "--core-ref", "1.2.30", "--api-url", url],
    )
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "acme/two: dispatched" in result.output and "1 dispatched, 1 failed" in result.output
    assert TOKEN not in result.output


def test_failures_report_the_attempts_made(github: tuple[str, Scripted]) -> None:
    url, script = github
    script.responses = [(500, {}, None)]
    [result] = client(url).dispatch_all(["a/b"], {"core_ref": "1"})
    assert (result.ok, result.status, result.attempts) == (False, 500, 4)


SECONDARY = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."}


def test_secondary_rate_limit_waits_a_minute_then_retries(github: tuple[str, Scripted]) -> None:
    url, script = github
    script.responses = [(403, {"x-ratelimit-remaining": "4999"}, SECONDARY), (204, {}, None)]
    waits: list[float] = []
    assert client(url, waits).dispatch("a/b", {"core_ref": "1"}) == 2
    assert waits == [60.0]


def test_secondary_rate_limit_wait_is_configurable_and_grows(
    github: tuple[str, Scripted],
) -> None:
    url, script = github
    script.responses = [(403, {}, SECONDARY)]
    waits: list[float] = []
    sender = dispatch.DispatchClient(
        TOKEN, api_url=url, attempts=3, secondary_limit_wait_s=5.0, sleep=waits.append
    )
    with pytest.raises(DispatchError, match="rate limit") as info:
        sender.dispatch("a/b", {"core_ref": "1"})
    assert waits == [5.0, 10.0] and "permission" not in str(info.value)


def test_retry_after_zero_still_backs_off(github: tuple[str, Scripted]) -> None:
    url, script = github
    script.responses = [(429, {"Retry-After": "0"}, None), (204, {}, None)]
    waits: list[float] = []
    client(url, waits).dispatch("a/b", {"core_ref": "1"})
    assert waits == [1.0]


def test_a_huge_error_body_is_quoted_to_a_short_prefix(github: tuple[str, Scripted]) -> None:
    """A 50 MB error body was echoed whole (242 MB RSS)."""
    url, script = github
    script.responses = [(422, {}, {"message": "x" * 2_000_000})]
    with pytest.raises(DispatchError) as info:
        client(url).dispatch("a/b", {"core_ref": "1"})
    assert len(str(info.value)) < 1_000
    assert "HTTP 422" in str(info.value)


def test_waits_stop_at_the_total_budget(
    github: tuple[str, Scripted], caplog: pytest.LogCaptureFixture
) -> None:
    url, script = github
    script.responses = [(500, {}, None)]
    waits: list[float] = []
    sender = dispatch.DispatchClient(
        TOKEN, api_url=url, attempts=10, backoff_s=30, budget_s=100, sleep=waits.append
    )
    with caplog.at_level("WARNING"), pytest.raises(DispatchError, match="100 s budget"):
        sender.dispatch("a/b", {"core_ref": "1"})
    assert sum(waits) <= 100
    assert waits == [30, 60]
    announced = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert len(announced) == 2 and "a/b: HTTP 500" in announced[0]


def test_a_server_that_never_answers_costs_at_most_the_budget() -> None:
    """187 s per repository before: five 30 s timeouts and the backoffs between them."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts connections (the backlog) and never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        sender = dispatch.DispatchClient(TOKEN, api_url=url, budget_s=1.0, sleep=lambda s: None)
        with pytest.raises(DispatchError, match="budget") as info:
            sender.dispatch("a/b", {"core_ref": "1"})
    assert info.value.attempts == 1


SHA = "0123456789abcdef0123456789abcdef01234567"


def test_cli_sends_the_core_commit_to_report_on(
    github: tuple[str, Scripted], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, script = github
    monkeypatch.setenv("REPO_TOKEN", TOKEN)
    args = ["dispatch", "--repo", "acme/one", "--core-ref", "1.2.30", "--api-url", url]
    result = CliRunner().invoke(
        contracts_app, [*args, "--core-repo", "acme/core", "--core-sha", SHA]
    )
    assert result.exit_code == 0, result.output
    [request] = script.requests
    payload = request["body"]["client_payload"]
    assert (payload["core_repo"], payload["core_sha"]) == ("acme/core", SHA)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--core-repo", "acme/core"], "go together"),
        (["--core-sha", SHA], "go together"),
        (["--core-repo", "acme", "--core-sha", SHA], "is not OWNER/NAME"),
        (["--core-repo", "acme/core", "--core-sha", SHA.upper()], "40 lowercase hex"),
        (["--core-repo", "", "--core-sha", SHA], "go together"),
    ],
)
def test_cli_refuses_a_bad_core_commit_before_sending(
    github: tuple[str, Scripted], monkeypatch: pytest.MonkeyPatch, extra: list[str], message: str
) -> None:
    url, script = github
    monkeypatch.setenv("REPO_TOKEN", TOKEN)
    args = ["dispatch", "--repo", "acme/one", "--core-ref", "1.2.30", "--api-url", url]
    result = CliRunner().invoke(contracts_app, [*args, *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output and script.requests == []
