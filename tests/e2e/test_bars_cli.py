"""``mdp bars``: filters by time, symbol and resolution; table, CSV, Parquet and JSON out."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from market_data_pipeline.defaults import TABLE_COLUMNS

from .conftest import Mdp


@pytest.fixture
def store(mdp: Mdp, tmp_path: Path) -> str:
    csv = tmp_path / "t.csv"
    rows = [
        f"ES,2024-01-02T09:{m:02d}:{s:02d}Z,{1640 + m + s / 60:.2f},1"
        for m in range(5)
        for s in (0, 30)
    ]
    rows.append("NQ,2024-01-02T09:00:10Z,1644,2")
    csv.write_text("symbol,ts,price,size\n" + "\n".join(rows) + "\n")
    sink = f"sqlite:///{tmp_path / 'b.db'}"
    assert mdp("run", "-i", str(csv), "-S", sink, "-r", "1m").exit_code == 0
    return sink


def test_time_window_and_symbol(mdp: Mdp, store: str) -> None:
    result = mdp(
        "bars", "-S", store, "-s", "ES", "--start", "2024-01-02T09:01Z",
        "--end", "2024-01-02T09:03Z", "-f", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["ts"] for r in rows] == ["2024-01-02T09:01:00+00:00", "2024-01-02T09:02:00+00:00"]
    assert {r["symbol"] for r in rows} == {"ES"}


def test_csv_and_parquet_hold_every_bar(mdp: Mdp, store: str, tmp_path: Path) -> None:
    out = tmp_path / "bars.parquet"
    assert mdp("bars", "-S", store, "-f", "parquet", "-o", str(out)).exit_code == 0
    parquet = pl.read_parquet(out)
    assert parquet.height == 6  # 5 ES minutes + 1 NQ: all of them, not the latest 20 only
    result = mdp("bars", "-S", store, "-f", "csv")
    assert result.exit_code == 0
    assert pl.read_csv(result.stdout.encode()).height == 6


def test_table_prices_show_the_same_decimals(mdp: Mdp, store: str) -> None:
    result = mdp("bars", "-S", store)
    assert result.exit_code == 0
    assert "1,644.00" in result.stdout  # next to prices like 1,640.50, never "1,644"


def test_a_missing_database_file_is_an_error(mdp: Mdp, tmp_path: Path) -> None:
    result = mdp("bars", "-S", f"sqlite:///{tmp_path / 'typo.db'}")
    assert result.exit_code == 2
    assert "no database file" in result.stderr
    assert not (tmp_path / "typo.db").exists()


def test_parquet_needs_a_file(mdp: Mdp, store: str) -> None:
    result = mdp("bars", "-S", store, "-f", "parquet")
    assert result.exit_code == 2
    assert "--out FILE" in result.stderr


def test_dash_j_is_json_for_run_and_bars(mdp: Mdp, tmp_path: Path) -> None:
    sink = f"sqlite:///{tmp_path / 'j.db'}"
    run = mdp("run", "-n", "200", "-S", sink, "-r", "1m", "-j")
    assert run.exit_code == 0, run.output
    summary = json.loads(run.stdout)
    assert summary["ticks_read"] == 200 and summary["bars_written"] > 0
    bars = mdp("bars", "-S", sink, "-n", "2", "-j")
    assert bars.exit_code == 0, bars.output
    rows = [json.loads(line) for line in bars.stdout.splitlines()]
    assert len(rows) == 2 and set(rows[0]) == {*TABLE_COLUMNS}


@pytest.mark.parametrize("sink", ["memory://day", "sqlite:///:memory:"])
def test_an_in_process_store_is_an_error_not_an_empty_table(mdp: Mdp, sink: str) -> None:
    result = mdp("bars", "-S", sink)
    assert result.exit_code == 2
    assert "only inside the Python process that wrote them" in result.stderr
    assert "read_bars" in result.stderr


def test_a_run_into_memory_says_the_bars_end_with_it(mdp: Mdp) -> None:
    run = mdp("run", "-n", "200", "-S", "memory://cli-run", "-r", "1m")
    assert run.exit_code == 0, run.output
    assert "memory://cli-run kept the bars in this process only" in run.stdout
    assert " bars --sink memory://" not in run.stdout  # no pointer to a store nobody can read
