"""``mdp contracts`` through the whole CLI with short flags: records, page, surface, diff."""

from __future__ import annotations

import json
from pathlib import Path

from market_data_contracts.ledger import open_ledger
from market_data_contracts.record import CoreOrigin, VerificationRecord
from market_data_contracts.verdict import ContractResult, Counts, Verdict

from .conftest import Mdp

WHEN = "2026-12-01T10:00:00Z"


def _record(repo: str, core: str, verdict: Verdict = Verdict.COMPATIBLE) -> VerificationRecord:
    result = ContractResult(
        verdict=verdict,
        core_requested=core,
        core_version=core,
        core_source="index",
        python="3.12",
        counts=Counts(passed=90),
        reason=None if verdict is Verdict.COMPATIBLE else "a reason",
    )
    return VerificationRecord(
        repo=repo,
        commit="c" * 40,
        result=result,
        origin=CoreOrigin("index"),
        correlation_id="corr-1",
        run_url=None,
        started_at=WHEN,
        finished_at=WHEN,
    )


def _ledger(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'contracts.db'}"
    open_ledger(url).publish(
        [
            _record("acme/one", "1.5.0"),
            _record("acme/two", "1.5.0", Verdict.INCOMPATIBLE),
            _record("acme/one", "1.4.0"),
        ]
    )
    return url


def test_results_and_can_i_deploy_take_short_flags(mdp: Mdp, tmp_path: Path) -> None:
    url = _ledger(tmp_path)
    listed = mdp("contracts", "results", "-L", url, "-C", "1.5.0", "-R", "acme/two", "-j")
    assert listed.exit_code == 0, listed.output
    assert [(r["repo"], r["result"]["verdict"]) for r in json.loads(listed.stdout)] == [
        ("acme/two", "incompatible")
    ]
    yes = mdp("contracts", "can-i-deploy", "-C", "1.5.0", "-R", "acme/one", "-L", url, "-j")
    assert yes.exit_code == 0, yes.output
    assert json.loads(yes.stdout)["answer"] == "yes"
    no = mdp("contracts", "can-i-deploy", "-C", "1.5.0", "-R", "acme/one,acme/two", "-L", url)
    assert no.exit_code == 1 and "breaks acme/two" in no.output


def test_page_takes_short_flags(mdp: Mdp, tmp_path: Path) -> None:
    url = _ledger(tmp_path)
    site = tmp_path / "site"
    result = mdp("contracts", "page", "-o", str(site), "-L", url)
    assert result.exit_code == 0, result.output
    html = (site / "index.html").read_text(encoding="utf-8")
    assert "acme/one" in html and "acme/two" in html and "1.4.0" in html


def test_surface_and_diff_take_short_flags(mdp: Mdp, tmp_path: Path) -> None:
    before = tmp_path / "before.json"
    result = mdp("contracts", "surface", "-o", str(before))
    assert result.exit_code == 0, result.output
    changed = json.loads(before.read_text())
    changed["symbols"]["market_data_core.telemetry:BackpressureLevel"]["values"].append("panic")
    after = tmp_path / "after.json"
    after.write_text(json.dumps(changed))
    diff = mdp("contracts", "diff", str(before), str(after), "-j")
    assert diff.exit_code == 0, diff.output
    assert json.loads(diff.stdout)["worst"] == "breaking"


def test_dispatch_dry_run_takes_short_flags(mdp: Mdp) -> None:
    env = {"REPO_TOKEN": "ghp_not_sent_0123456789"}
    args = ["-R", "acme/one,acme/two", "--core-ref", "1.5.0", "-p", "3.12", "--dry-run"]
    result = mdp("contracts", "dispatch", *args, env=env)
    assert result.exit_code == 0, result.output
    assert "acme/one" in result.output and "acme/two" in result.output
    assert '"python_version": "3.12"' in result.output
