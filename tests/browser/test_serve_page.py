"""The page of ``mdp serve`` in a real Chromium: replays started through the API end on the page,
and the candles drawn match the table; ``mdp bars --plot`` draws the same candles offline."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from serve_process import OrchestratorClient, ServeProcess
from typer.testing import CliRunner

from market_data_pipeline.cli.app import app

from .conftest import BrowserPage

T0_MS = 1_704_186_000_000  # 2024-01-02T09:00:00Z


def _write_ticks(path: Path, rows: int) -> None:
    lines = ["ts,symbol,price,size"]
    for i in range(rows):
        lines.append(f"{T0_MS + i * 100},S{i % 2},{100 + (i * 7 % 41) * 0.25:.2f},{1 + i % 5}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _count(db: Path, symbol: str, resolution: str) -> int:
    with sqlite3.connect(db) as conn:
        sql = "SELECT COUNT(*) FROM bars WHERE symbol = ? AND resolution = ?"
        return int(conn.execute(sql, (symbol, resolution)).fetchone()[0])


def test_page_shows_replays_end_and_draws_every_stored_candle(
    tmp_path: Path, browser_page: BrowserPage
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _write_ticks(data / "ticks.csv", 12_000)  # 20 minutes of two symbols
    (data / "bad.csv").write_text("ts,symbol,price,size\n1704186000000,S0,x,1\n")
    db = tmp_path / "runs.db"
    with ServeProcess(tmp_path, "--data-dir", str(data), "--sink", f"sqlite:///{db}") as serve:
        page = browser_page.page
        page.goto(f"http://127.0.0.1:{serve.port}/")
        assert page.title() == "mdp serve"
        orchestrator = OrchestratorClient(serve.client())
        good = orchestrator.start_replay({"input": "ticks.csv", "resolution": "1m,5m"})["run_id"]
        row = page.locator(f'#runs tr[data-run-id="{good}"]')
        row.locator("td.status", has_text="success").wait_for(timeout=60_000)
        bad = orchestrator.start_replay({"input": "bad.csv"})["run_id"]
        failed = page.locator(f'#runs tr[data-run-id="{bad}"]')
        failed.locator("td.status", has_text="failed").wait_for(timeout=60_000)
        assert "row 2, field price" in failed.locator("td.error").inner_text()
        assert orchestrator.wait(bad)["status"] == "failed"

        for symbol, resolution in (("S0", "1m"), ("S1", "5m")):
            expected = _count(db, symbol, resolution)
            assert expected > 0
            page.select_option("#series", f"{symbol} {resolution}")
            chart = page.locator(f'#chart[data-series="{symbol} {resolution}"]')
            chart.wait_for(timeout=30_000)
            assert chart.get_attribute("data-candles") == str(expected)
            assert page.locator("#bar-count").get_attribute("data-bars") == str(expected)
            assert page.locator("#chart canvas").count() > 0
        row.click()
        page.locator("#flow canvas").first.wait_for(timeout=30_000)
        page.goto("about:blank")  # the page polls: leave before the service stops
    assert browser_page.errors == []

    plot = tmp_path / "s0.html"
    result = CliRunner().invoke(
        app, ["bars", "-S", f"sqlite:///{db}", "-s", "S0", "-r", "1m", "--plot", str(plot)]
    )
    assert result.exit_code == 0, result.output
    text = plot.read_text()
    assert "http://" not in text.split("<body>")[1] and 'src="' not in text
    page.goto(plot.as_uri())
    page.locator("#chart[data-candles]").wait_for(timeout=30_000)
    assert page.locator("#chart").get_attribute("data-candles") == str(_count(db, "S0", "1m"))
    assert browser_page.errors == []
