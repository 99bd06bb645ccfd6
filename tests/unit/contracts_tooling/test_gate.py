"""can-i-deploy: each repository at its latest recorded commit; yes 0, no 1, unknown 2."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from market_data_contracts.cli import contracts_app
from market_data_contracts.gate import Answer, can_i_deploy
from market_data_contracts.ledger import open_ledger
from market_data_contracts.verdict import Verdict

from .records_helpers import make_record

OLD, NEW = "1" * 40, "2" * 40


def test_yes_when_every_repository_is_compatible_at_its_latest_commit() -> None:
    records = [
        make_record("a/one", OLD, "1.5.0", Verdict.INCOMPATIBLE, finished_at="2026-01-01T00:00Z"),
        make_record("a/one", NEW, "1.5.0", finished_at="2026-01-02T00:00Z"),
        make_record("a/two", NEW, "1.5.0", Verdict.COMPATIBLE_WITH_NOTICES),
    ]
    decision = can_i_deploy("1.5.0", ["a/one", "a/two"], records)
    assert decision.answer is Answer.YES and decision.answer.exit_code == 0
    assert [r.commit for r in decision.repos] == [NEW, NEW]


def test_no_names_the_incompatible_repository_and_its_first_failure() -> None:
    records = [
        make_record("a/one", NEW, "1.5.0", python="3.11"),
        make_record("a/one", NEW, "1.5.0", Verdict.INCOMPATIBLE, python="3.12"),
        make_record("a/two", NEW, "1.4.61"),
    ]
    decision = can_i_deploy("1.5.0", ["a/one", "a/two"], records)
    assert decision.answer is Answer.NO and decision.answer.exit_code == 1
    one, two = decision.repos
    assert one.answer is Answer.NO and "schema_id changed" in one.detail
    assert two.answer is Answer.UNKNOWN


def test_unknown_when_the_latest_commit_was_not_tested_against_that_core() -> None:
    records = [
        make_record("a/one", OLD, "1.5.0", finished_at="2026-01-01T00:00Z"),
        make_record("a/one", NEW, "1.4.61", finished_at="2026-01-02T00:00Z"),
    ]
    decision = can_i_deploy("1.5.0", ["a/one", "a/missing"], records)
    assert decision.answer is Answer.UNKNOWN and decision.answer.exit_code == 2
    assert "latest recorded commit" in decision.repos[0].detail
    assert decision.repos[1].detail == "no record of this repository"


def test_incomplete_and_error_results_are_unknown_not_yes() -> None:
    for verdict in (Verdict.INCOMPLETE, Verdict.ERROR):
        decision = can_i_deploy("1.5.0", ["a/one"], [make_record("a/one", NEW, "1.5.0", verdict)])
        assert decision.answer is Answer.UNKNOWN, verdict


def test_cli_answers_from_the_ledger_with_the_documented_exit_codes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    open_ledger(url).publish(
        [
            make_record("a/one", NEW, "1.5.0"),
            make_record("a/two", NEW, "1.5.0", Verdict.INCOMPATIBLE),
        ]
    )
    runner = CliRunner()
    ask = ["can-i-deploy", "--core", "1.5.0", "--ledger", url]
    yes = runner.invoke(contracts_app, [*ask, "--repo", "a/one"])
    assert yes.exit_code == 0 and "fits every required downstream" in yes.output
    no = runner.invoke(contracts_app, [*ask, "--repo", "a/one,a/two"])
    assert no.exit_code == 1 and "breaks a/two" in no.output
    unknown = runner.invoke(contracts_app, [*ask, "--repo", "a/one", "--repo", "a/three", "--json"])
    assert unknown.exit_code == 2
    data = json.loads(unknown.stdout)
    assert data["answer"] == "unknown" and data["repos"][1]["repo"] == "a/three"


def test_cli_results_lists_and_filters(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    open_ledger(url).publish(
        [make_record("a/one", NEW, "1.5.0"), make_record("a/two", NEW, "1.2.0")]
    )
    runner = CliRunner()
    listed = runner.invoke(contracts_app, ["results", "--ledger", url, "--core", "1.2.0", "--json"])
    assert listed.exit_code == 0
    assert [r["repo"] for r in json.loads(listed.stdout)] == ["a/two"]
    table = runner.invoke(contracts_app, ["results", "--ledger", url])
    assert table.exit_code == 0 and "2 verification record(s)" in table.output
