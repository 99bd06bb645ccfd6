"""``mdp run`` over several input files: merged in event time, overlaps refused, late ticks loud."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from market_data_pipeline.sinks import read_bars

from .conftest import Mdp, write_trades_csv


def _split_against_names(csv: Path, folder: Path) -> list[Path]:
    """Split ``csv`` in three by time, into files whose names sort against time."""
    frame = pl.read_csv(csv)
    third = frame.height // 3
    parts = []
    for name, start in zip(("c.csv", "b.csv", "a.csv"), (0, third, 2 * third), strict=True):
        length = third if name != "a.csv" else frame.height - start
        frame.slice(start, length).write_csv(folder / name)
        parts.append(folder / name)
    return parts


def test_files_named_against_time_give_the_bars_of_one_file(mdp: Mdp, tmp_path: Path) -> None:
    whole = write_trades_csv(tmp_path / "whole.csv", 6_000)
    folder = tmp_path / "parts"
    folder.mkdir()
    a = _split_against_names(whole, folder)[2]
    one = f"sqlite:///{tmp_path / 'one.db'}"
    many = f"sqlite:///{tmp_path / 'many.db'}"
    assert mdp.run_json("--input", str(whole), "--sink", one)[0] == 0
    code, summary = mdp.run_json("--input", str(a), "--input", str(folder), "--sink", many)
    assert code == 0, summary
    assert summary["resolutions"]["1m"]["ticks_late"] == 0
    files = summary["source"]["files"]
    assert [Path(f["path"]).name for f in files] == ["a.csv", "b.csv", "c.csv"]
    assert [set(f) for f in files] == [{"path", "rows", "bad", "duplicate", "late"}] * 3
    assert sum(f["rows"] for f in files) == 6_000
    key = ["symbol", "resolution", "ts_ns"]
    assert read_bars(many).sort(key).equals(read_bars(one).sort(key))


def test_two_copies_of_a_bars_file_fail_naming_both(mdp: Mdp, tmp_path: Path) -> None:
    bars = "symbol,ts,open,high,low,close,volume\nSPY,2024-01-02T09:30:00Z,1,2,1,2,5\n"
    (tmp_path / "spy.csv").write_text(bars)
    (tmp_path / "spy copy.csv").write_text(bars)
    sink = f"sqlite:///{tmp_path / 'bars.db'}"
    result = mdp("run", "--input", str(tmp_path / "*.csv"), "--sink", sink, "--resolution", "1h")
    assert result.exit_code == 2, result.output
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "duplicate bar (SPY at 2024-01-02T09:30:00Z)" in message
    assert "spy copy.csv" in message and "spy.csv" in message and "also in" in message
    assert read_bars(sink).height == 0


def test_duplicate_trades_fail_by_default_and_are_counted_when_skipped(
    mdp: Mdp, tmp_path: Path
) -> None:
    first = write_trades_csv(tmp_path / "first.csv", 600)
    again = tmp_path / "again.csv"
    pl.read_csv(first).slice(100, 50).write_csv(again)
    sink = f"sqlite:///{tmp_path / 'bars.db'}"
    result = mdp("run", "--input", str(first), "--input", str(again), "--sink", sink)
    assert result.exit_code == 2
    assert (
        "again.csv, row 2: duplicate trade" in result.stderr
        and "first.csv row 102" in result.stderr
    )
    assert read_bars(sink).height == 0

    code, summary = mdp.run_json(
        "--input", str(first), "--input", str(again), "--sink", sink, "--on-duplicate", "skip"
    )
    assert code == 0, summary
    assert summary["bad_reasons"] == {"duplicate row": 50}
    assert [f["duplicate"] for f in summary["source"]["files"]] == [0, 50]
    assert summary["resolutions"]["1m"]["ticks_in_bars"] == 600
    result = mdp(
        "run",
        "--input",
        str(first),
        "--input",
        str(again),
        "--sink",
        sink,
        "--on-duplicate",
        "skip",
    )
    assert "again.csv: 50 rows, 0 bad, 50 duplicate, 0 late" in result.stdout


def test_late_ticks_warn_and_fail_with_on_late_fail(mdp: Mdp, tmp_path: Path) -> None:
    csv = write_trades_csv(tmp_path / "trades.csv", 3_000)
    shuffled = tmp_path / "shuffled.csv"
    frame = pl.read_csv(csv)
    pl.concat([frame.slice(1_500), frame.slice(0, 1_500)]).write_csv(shuffled)
    sink = f"sqlite:///{tmp_path / 'bars.db'}"
    result = mdp("run", "--input", str(shuffled), "--sink", sink)
    assert result.exit_code == 0
    assert "warning" in result.stdout and "--grace" in result.stdout
    late = pl.read_csv(csv).height // 2
    assert f"{late:,} ticks came after their window had closed" in " ".join(result.stdout.split())

    failing = f"sqlite:///{tmp_path / 'failing.db'}"
    code, summary = mdp.run_json("--input", str(shuffled), "--sink", failing, "--on-late", "fail")
    assert code == 1
    assert summary["status"] == "failed" and "--on-late fail" in summary["error"]
    assert summary["source"]["files"][0]["late"] == late
    assert summary["bars_written"] == 0 and read_bars(failing).height == 0
