"""The ledger of verification records: SQLite and PostgreSQL, idempotent publishing, filters."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from market_data_contracts.ledger import LedgerError, RecordFilter, open_ledger
from market_data_contracts.record import VerificationRecord, core_origin, repo_from_remote
from market_data_contracts.verdict import Verdict

from .records_helpers import make_record


def _round_trip(url: str) -> None:
    ledger = open_ledger(url)
    first = make_record(verdict=Verdict.INCOMPATIBLE)
    other = make_record(repo="acme/other", core="1.2.0", finished_at="2026-12-01T11:00:00Z")
    assert ledger.publish([first, other]) == 2
    assert ledger.publish([first]) == 1  # the same key again: no second row
    stored = ledger.records()
    assert stored == [first, other]
    assert ledger.records(RecordFilter(core="1.2.0")) == [other]
    assert ledger.records(RecordFilter(repos=("acme/pipeline",))) == [first]
    rerun = make_record(verdict=Verdict.COMPATIBLE, finished_at="2026-12-01T12:00:00Z")
    ledger.publish([rerun])  # a re-run with the same correlation id leaves its latest result
    assert ledger.records(RecordFilter(repos=("acme/pipeline",))) == [rerun]
    new_id = make_record(correlation_id="corr-2", finished_at="2026-12-01T13:00:00Z")
    ledger.publish([new_id])
    assert len(ledger.records()) == 3


def test_sqlite_ledger_round_trips_and_is_idempotent(tmp_path: Path) -> None:
    _round_trip(f"sqlite:///{tmp_path / 'sub' / 'contracts.db'}")


@pytest.mark.postgres
def test_postgres_ledger_round_trips_and_is_idempotent(postgres_url: str) -> None:
    _round_trip(postgres_url)


def test_sqlite_schema_is_created_on_first_publish(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    open_ledger(f"sqlite:///{path}").publish([])
    with sqlite3.connect(path) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
    assert "contract_records" in tables
    assert open_ledger(f"sqlite:///{path}").records() == []


def test_reading_a_missing_sqlite_ledger_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "missing.db"
    with pytest.raises(LedgerError, match="does not exist"):
        open_ledger(f"sqlite:///{path}").records()
    assert not path.parent.exists()


def test_unknown_schemes_and_unreachable_servers_fail_without_the_password() -> None:
    with pytest.raises(LedgerError, match="unknown ledger URL"):
        open_ledger("mysql://u:pw@h/db")
    with pytest.raises(LedgerError) as info:
        open_ledger("postgresql://u:hunter2@127.0.0.1:1/db").records()
    assert "hunter2" not in str(info.value)


def test_a_record_round_trips_through_json() -> None:
    record = make_record(verdict=Verdict.COMPATIBLE_WITH_NOTICES)
    assert VerificationRecord.from_json(record.to_json()) == record
    assert record.to_json()["verdict"] == "compatible_with_notices"


@pytest.mark.parametrize(
    ("url", "repo"),
    [
        ("https://github.com/acme/pipeline.git", "acme/pipeline"),
        ("git@github.com:acme/pipe.line.git", "acme/pipe.line"),
        ("https://github.com/acme/pipeline/", "acme/pipeline"),
        ("not a url", None),
    ],
)
def test_repository_from_the_git_remote(url: str, repo: str | None) -> None:
    assert repo_from_remote(url) == repo


def test_core_origin_from_direct_url() -> None:
    assert core_origin(None).source == "index"
    git = core_origin(
        {
            "url": "https://github.com/acme/market-data-core",
            "vcs_info": {"vcs": "git", "requested_revision": "v1.5.0", "commit_id": "abc"},
        }
    )
    assert (git.source, git.git_ref, git.git_commit) == ("git", "v1.5.0", "abc")
    wheel = core_origin({"url": "file:///w.whl", "archive_info": {"hashes": {"sha256": "ff"}}})
    assert (wheel.source, wheel.wheel_sha256) == ("path", "ff")


def test_contracts_run_writes_and_publishes_its_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from market_data_contracts.cli import contracts_app

    monkeypatch.setenv("MDP_CORRELATION_ID", "rel-7")
    monkeypatch.setenv("GITHUB_SHA", "b" * 40)
    url = f"sqlite:///{tmp_path / 'c.db'}"
    args = ["run", "--out", str(tmp_path), "--ledger", url, "--repo", "acme/pipeline"]
    result = CliRunner().invoke(contracts_app, [*args, "--", "-q", "-k", "test_core_imports"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "result.json").read_text())["verdict"] == "compatible"
    [stored] = open_ledger(url).records()
    assert (stored.repo, stored.commit, stored.correlation_id) == (
        "acme/pipeline",
        "b" * 40,
        "rel-7",
    )
    assert stored.verdict is Verdict.COMPATIBLE and stored.result.counts.passed >= 1
    on_disk = VerificationRecord.from_json(json.loads((tmp_path / "record.json").read_text()))
    assert on_disk == stored
