"""``mdp run --allowed-lateness`` and ``--late-output``: revised bars, the side output, settings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import polars as pl

from market_data_pipeline.sinks import read_bars

from .conftest import Mdp

T0_MS = 1_704_186_000_000  # 2024-01-02T09:00:00Z


def _arrivals(path: Path, after_s: int) -> Path:
    """Trades of one symbol every second for 5 minutes from 09:00, and one for 09:00:30.5 that
    arrives right after the one for ``after_s`` seconds past 09:00 (rows in arrival order)."""
    rows = [
        {"symbol": "ES", "ts": T0_MS + i * 1_000, "price": 100.0 + i % 7, "size": 1}
        for i in range(300)
    ]
    rows.insert(after_s + 1, {"symbol": "ES", "ts": T0_MS + 30_500, "price": 250.0, "size": 5})
    pl.DataFrame(rows).write_csv(path)
    return path


def _revisions(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT ts, revision FROM bars WHERE resolution = '1m'").fetchall()
    return dict(rows)


def test_a_late_tick_within_the_lateness_revises_its_bar(mdp: Mdp, tmp_path: Path) -> None:
    csv = _arrivals(tmp_path / "t.csv", after_s=90)
    db = tmp_path / "bars.db"
    code, summary = mdp.run_json(
        "--input", str(csv), "--sink", f"sqlite:///{db}", "-r", "1m", "--grace", "0",
        "--allowed-lateness", "2m",
    )  # fmt: skip
    assert code == 0 and summary["reconciled"]
    one = summary["resolutions"]["1m"]
    assert (one["revised"], one["revising_ticks"], one["ticks_late"]) == (1, 1, 0)
    assert one["ticks_in_bars"] == 301
    assert _revisions(db)["2024-01-02T09:00:00.000000Z"] == 1
    first = read_bars(f"sqlite:///{db}").row(0, named=True)
    assert (first["high"], first["volume"], first["trades"]) == (250.0, 65.0, 61)


def test_without_lateness_the_same_tick_is_late_and_bars_have_revision_0(
    mdp: Mdp, tmp_path: Path
) -> None:
    csv = _arrivals(tmp_path / "t.csv", after_s=90)
    db = tmp_path / "bars.db"
    code, summary = mdp.run_json(
        "--input", str(csv), "--sink", f"sqlite:///{db}", "-r", "1m", "--grace", "0"
    )
    assert code == 0 and summary["resolutions"]["1m"]["ticks_late"] == 1
    assert "revised" not in summary["resolutions"]["1m"] and "lateness" not in summary
    assert set(_revisions(db).values()) == {0}


def test_ticks_later_than_the_lateness_go_to_the_late_output_and_replay(
    mdp: Mdp, tmp_path: Path
) -> None:
    csv = _arrivals(tmp_path / "t.csv", after_s=200)
    late = tmp_path / "late.csv"
    code, summary = mdp.run_json(
        "--input", str(csv), "--sink", f"sqlite:///{tmp_path / 'a.db'}", "-r", "1m",
        "--grace", "0", "--allowed-lateness", "1m", "--late-output", str(late),
    )  # fmt: skip
    assert code == 0 and summary["reconciled"]
    assert summary["resolutions"]["1m"]["ticks_late"] == 1
    assert summary["lateness"]["late_output"] == {"target": str(late), "rows": 1}
    kept = pl.read_csv(late)
    assert kept.select("symbol", "price", "reason", "resolutions").row(0) == (
        "ES", 250.0, "beyond allowed lateness", "1m",
    )  # fmt: skip
    assert kept["window_start"][0].startswith("2024-01-02T09:00:00")
    code, again = mdp.run_json("--input", str(late), "--sink", "memory://late-replay", "-r", "1m")
    assert code == 0 and again["resolutions"]["1m"]["ticks_in_bars"] == 1


def test_the_lateness_comes_from_the_environment_too(mdp: Mdp, tmp_path: Path) -> None:
    csv = _arrivals(tmp_path / "t.csv", after_s=90)
    code, summary = mdp.run_json(
        "--input", str(csv), "--sink", "memory://env-lateness", "-r", "1m", "--grace", "0",
        env={"MDP_ALLOWED_LATENESS": "2m"},
    )  # fmt: skip
    assert code == 0 and summary["lateness"]["allowed_lateness"] == "2m"
    assert summary["resolutions"]["1m"]["revising_ticks"] == 1


def test_a_bad_late_output_is_one_usage_line(mdp: Mdp, tmp_path: Path) -> None:
    csv = _arrivals(tmp_path / "t.csv", after_s=90)
    result = mdp("run", "--input", str(csv), "--sink", "memory://bad", "--late-output", "late.txt")
    assert result.exit_code == 2
    assert "--late-output 'late.txt'" in result.output and ".parquet or .csv" in result.output
    result = mdp(
        "run", "--input", str(csv), "--sink", "memory://bad", "--late-output", "table:late"
    )
    assert result.exit_code == 2 and "SQLite or PostgreSQL" in result.output


def test_filled_gaps_and_allowed_lateness_are_refused_together(mdp: Mdp, tmp_path: Path) -> None:
    csv = _arrivals(tmp_path / "t.csv", after_s=90)
    result = mdp(
        "run", "--input", str(csv), "--sink", "memory://gaps", "--calendar", "XNYS", "-r", "1d",
        "--fill-gaps", "--allowed-lateness", "1m",
    )  # fmt: skip
    assert result.exit_code == 2 and "--fill-gaps does not follow revised bars" in result.output
