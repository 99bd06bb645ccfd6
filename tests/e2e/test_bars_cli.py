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


@pytest.mark.parametrize(
    ("written", "asked", "label"),
    [
        ("1min", "1m", "1m"),
        ("60s", "1min", "1m"),
        ("60m", "1h", "1h"),
        ("1h", "60m", "1h"),
        ("3600s", "1h", "1h"),
    ],
)
def test_every_spelling_of_a_width_is_stored_and_found_as_one(
    mdp: Mdp, tmp_path: Path, written: str, asked: str, label: str
) -> None:
    sink = f"sqlite:///{tmp_path / 's.db'}"
    run = mdp("run", "-n", "300", "-S", sink, "-r", f"{written},{asked}", "-j")
    assert run.exit_code == 0, run.output
    assert list(json.loads(run.stdout)["resolutions"]) == [label]  # built and stored once
    found = mdp("bars", "-S", sink, "-r", asked, "-f", "json")
    assert found.exit_code == 0, found.output
    rows = [json.loads(line) for line in found.stdout.splitlines()]
    assert rows and {row["resolution"] for row in rows} == {label}


def test_bars_stored_under_an_older_spelling_are_found(mdp: Mdp, tmp_path: Path) -> None:
    import sqlite3

    sink = f"sqlite:///{tmp_path / 'old.db'}"
    assert mdp("run", "-n", "300", "-S", sink, "-r", "1h").exit_code == 0
    with sqlite3.connect(tmp_path / "old.db") as conn:  # as an older version wrote -r 60m
        conn.execute("UPDATE bars SET resolution = '60m'")
    found = mdp("bars", "-S", sink, "-r", "1h", "-f", "csv")
    assert found.exit_code == 0 and pl.read_csv(found.stdout.encode()).height > 0


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["-r", "5x"], "bad resolution '5x': unknown unit 'x'"),
        (["-r", "99999999999999h"], "longer than 100 years"),
        (["-n", "100000000000000000000000000000"], "--limit 100000000000000000000000000000"),
        (["-f", "csv", "-o", "/tmp"], "--out /tmp: is a directory"),
        (["-f", "parquet", "-o", "/nonexistent/dir/x.parquet"], "no directory /nonexistent/dir"),
        (["-f", "json", "-o", "/proc/version"], "--out /proc/version: cannot write"),
        (["--table", "nope"], "no table nope in sqlite:///"),
        (["--table", "a.b"], "schema.table is for PostgreSQL"),
    ],
)
def test_what_cannot_work_is_one_line_and_exit_2(
    mdp: Mdp, store: str, args: list[str], said: str
) -> None:
    result = mdp("bars", "-S", store, *args)
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1 and said in result.stderr, result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_an_output_file_is_written_whole_and_leaves_no_part_file(
    mdp: Mdp, store: str, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "bars.csv"
    out.parent.mkdir()
    assert mdp("bars", "-S", store, "-f", "csv", "-o", str(out)).exit_code == 0
    assert pl.read_csv(out).height == 6
    assert [p.name for p in out.parent.iterdir()] == ["bars.csv"]


def test_a_ts_that_is_not_a_stored_time_is_one_line(mdp: Mdp, tmp_path: Path) -> None:
    import sqlite3

    from market_data_pipeline.sinks.schema import BarTable

    db = tmp_path / "text.db"
    with sqlite3.connect(db) as conn:
        conn.execute(BarTable().create_sql("sqlite"))
        conn.execute(
            "INSERT INTO bars (symbol, resolution, ts, open, high, low, close, volume)"
            " VALUES ('A', '1m', '2024-01-01', 1, 1, 1, 1, 1)"
        )
    result = mdp("bars", "-S", f"sqlite:///{db}")
    assert result.exit_code == 2
    assert "ts '2024-01-01' (A 1m) is not a stored time" in result.stderr
    assert result.stderr.count("\n") == 1


def test_run_and_bars_take_the_same_table(mdp: Mdp, tmp_path: Path) -> None:
    sink = f"sqlite:///{tmp_path / 't.db'}"
    run = mdp("run", "-n", "300", "-S", sink, "-r", "1m", "--table", "bars_es")
    assert run.exit_code == 0, run.output
    assert "--table bars_es" in run.stdout  # the "look" line reads the same table
    assert mdp("bars", "-S", sink).exit_code == 2  # no table bars
    found = mdp("bars", "-S", sink, "-f", "csv", env={"MDP_TABLE": "bars_es"})
    assert found.exit_code == 0 and pl.read_csv(found.stdout.encode()).height > 0
