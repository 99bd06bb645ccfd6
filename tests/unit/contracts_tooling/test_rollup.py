"""Rolling separate CI jobs' records into one summary, honouring declared expected failures."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from market_data_contracts import rollup
from market_data_contracts.cli import contracts_app
from market_data_contracts.record import VerificationRecord
from market_data_contracts.settings import ContractsSettings, ExpectedFailure
from market_data_contracts.verdict import Verdict

from .records_helpers import make_record


def _artifacts(tmp_path: Path, *records: VerificationRecord) -> Path:
    root = tmp_path / "artifacts"
    for i, record in enumerate(records):
        folder = root / f"contracts-junit-{i}"
        folder.mkdir(parents=True)
        (folder / "record.json").write_text(json.dumps(record.to_json()), encoding="utf-8")
    return root


def test_declared_failures_are_expected_and_a_declared_pass_is_not(tmp_path: Path) -> None:
    conf = ContractsSettings(root=tmp_path, expected_failures=(ExpectedFailure("1.2.31", "Bar"),))
    records = [
        make_record(core="1.2.31", verdict=Verdict.INCOMPATIBLE),
        make_record(core="1.2.31", verdict=Verdict.COMPATIBLE, python="3.12"),
        make_record(core="1.2.0"),
        make_record(core="1.2.11", verdict=Verdict.INCOMPLETE),
    ]
    cells = rollup.classify(records, conf)
    assert [(c.record.core_version, c.outcome, c.as_expected) for c in cells] == [
        ("1.2.0", "compatible", True),
        ("1.2.11", "incomplete", False),
        ("1.2.31", "expected failure", True),
        ("1.2.31", "unexpected pass", False),
    ]
    text = rollup.markdown(cells)
    assert "2 of 4 cell(s) NOT as expected" in text and "| 1.2.31 | 3.12 |" in text


def test_cli_rollup_writes_the_summary_and_sets_the_exit_code(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    good = _artifacts(tmp_path / "a", make_record(core="1.2.0"), make_record(core="1.4.61"))
    runner = CliRunner()
    ok = runner.invoke(contracts_app, ["rollup", str(good), "--markdown", str(summary)])
    assert ok.exit_code == 0, ok.output
    assert "2 cell(s), all as expected" in summary.read_text()
    bad = _artifacts(tmp_path / "b", make_record(core="1.5.0", verdict=Verdict.INCOMPATIBLE))
    url = f"sqlite:///{tmp_path / 'c.db'}"
    failed = runner.invoke(contracts_app, ["rollup", str(bad), "--ledger", url])
    assert failed.exit_code == 1 and "schema_id changed" in failed.output
    empty = runner.invoke(contracts_app, ["rollup", str(tmp_path / "none")])
    assert empty.exit_code == 2
