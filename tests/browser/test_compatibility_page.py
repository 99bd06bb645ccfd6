"""The compatibility page in a real browser: it renders, each cell shows its verdict, no errors."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from market_data_contracts.cli import contracts_app
from market_data_contracts.ledger import open_ledger
from market_data_contracts.page import COLOURS
from market_data_contracts.record import CoreOrigin, VerificationRecord
from market_data_contracts.verdict import ContractResult, Counts, Failure, Notice, Verdict

from .conftest import BrowserPage

CELLS = {
    ("acme/pipeline", "1.2.0"): Verdict.COMPATIBLE,
    ("acme/pipeline", "1.4.61"): Verdict.COMPATIBLE_WITH_NOTICES,
    ("acme/pipeline", "1.5.0"): Verdict.INCOMPATIBLE,
    ("acme/<script>alert(1)</script>", "1.4.61"): Verdict.INCOMPLETE,
    ("acme/store", "1.5.0"): Verdict.ERROR,
}


def make_record(repo: str, core: str, verdict: Verdict, run_url: str) -> VerificationRecord:
    failed = verdict is Verdict.INCOMPATIBLE
    result = ContractResult(
        verdict=verdict,
        core_requested=core,
        core_version=core,
        core_source="index",
        python="3.11",
        counts=Counts(passed=90, failed=int(failed), xfailed=6),
        first_failure=Failure("test_wire_format.py::test_round_trip", "schema_id changed")
        if failed
        else None,
        notices=(Notice("defect-fixed", "Core now sends XACK"),)
        if verdict is Verdict.COMPATIBLE_WITH_NOTICES
        else (),
        reason=None if verdict is Verdict.COMPATIBLE else f"{verdict.label} reason",
    )
    return VerificationRecord(
        repo,
        "c" * 40,
        result,
        CoreOrigin("index"),
        "corr-1",
        run_url,
        "2026-12-01T10:00:00Z",
        "2026-12-01T10:00:00Z",
    )


def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def _write_page(tmp_path: Path) -> Path:
    url = f"sqlite:///{tmp_path / 'contracts.db'}"
    records = [
        make_record(repo, core, verdict, f"https://ci.example/{i}")
        for i, ((repo, core), verdict) in enumerate(CELLS.items())
    ]
    open_ledger(url).publish(records)
    site = tmp_path / "site"
    result = CliRunner().invoke(contracts_app, ["page", "--ledger", url, "--out", str(site)])
    assert result.exit_code == 0, result.output
    return site / "index.html"


def test_each_cell_shows_its_verdict_and_expands(tmp_path: Path, browser_page: BrowserPage) -> None:
    page = browser_page.page
    page.goto(_write_page(tmp_path).as_uri())
    assert page.title() == "Core compatibility"
    headers = page.locator("#matrix thead th").all_inner_texts()
    assert headers == ["repository", "Core 1.2.0", "Core 1.4.61", "Core 1.5.0"]
    for i, ((repo, core), verdict) in enumerate(CELLS.items()):
        cell = page.locator(f'td.cell[data-repo="{repo}"][data-core="{core}"]')
        summary = cell.locator("summary")
        assert summary.inner_text() == verdict.label, (repo, core)
        assert cell.get_attribute("data-verdict") == verdict.value
        colour = summary.evaluate("e => getComputedStyle(e).backgroundColor")
        assert colour == _rgb(COLOURS[verdict]), (repo, core)
        assert summary.locator("a").get_attribute("href") == f"https://ci.example/{i}"
        assert not cell.locator(".failure, .notices").first.is_visible()
        summary.click(position={"x": 2, "y": 2})  # beside the link: expand, do not navigate
        assert cell.locator("details").evaluate("d => d.open")
        if verdict is Verdict.INCOMPATIBLE:
            assert "schema_id changed" in cell.locator(".failure").inner_text()
        if verdict is Verdict.COMPATIBLE_WITH_NOTICES:
            assert "Core now sends XACK" in cell.locator(".notices").inner_text()
    empty = page.locator("td.empty")
    assert empty.count() == 4 and empty.first.inner_text() == "no result"
    # The repository name with markup is shown as text, never run.
    assert page.locator("th", has_text="<script>alert(1)</script>").count() == 1
    assert browser_page.errors == []


def test_an_empty_ledger_gives_a_page_that_says_so(
    tmp_path: Path, browser_page: BrowserPage
) -> None:
    site = tmp_path / "site"
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    open_ledger(url).publish([])  # a ledger with no record yet (a missing one is an error)
    result = CliRunner().invoke(contracts_app, ["page", "--ledger", url, "--out", str(site)])
    assert result.exit_code == 0
    browser_page.page.goto((site / "index.html").as_uri())
    assert "no verification record yet" in browser_page.page.locator("#empty").inner_text()
    assert browser_page.errors == []
