"""``mdp run --calendar``: session bars, outside-session counts, gaps and --fill-gaps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl

from market_data_pipeline.sinks import read_bars

from .conftest import Mdp


def ny(text: str) -> int:
    return int(pd.Timestamp(text, tz="America/New_York").value)


def write_ticks(path: Path) -> Path:
    """SPY trades on 11-26, 11-29 (early close) and 12-02; none on 11-27; a few at night."""
    times = [
        ny("2024-11-26 09:30"),
        ny("2024-11-26 10:45"),
        ny("2024-11-26 15:59"),
        ny("2024-11-26 18:00"),  # after the close
        ny("2024-11-28 12:00"),  # Thanksgiving
        ny("2024-11-29 09:31"),
        ny("2024-11-29 12:59"),
        ny("2024-11-29 14:00"),  # after the early close
        ny("2024-12-02 09:30"),
    ]
    lines = [f"{t // 10**6},{100 + i},{i + 1}" for i, t in enumerate(times)]
    path.write_text("ts,price,size\n" + "\n".join(lines) + "\n")
    return path


def run(mdp: Mdp, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any], pl.DataFrame]:
    sink = f"sqlite:///{tmp_path / 'bars.db'}"
    args = ("--input", str(write_ticks(tmp_path / "spy.csv")), "--symbol", "SPY")
    code, summary = mdp.run_json(*args, "--calendar", "XNYS", "--sink", sink, *extra)
    return code, summary, read_bars(sink).sort("resolution", "ts_ns")


def test_session_bars_count_outside_ticks_and_gaps(mdp: Mdp, tmp_path: Path) -> None:
    code, summary, bars = run(mdp, tmp_path, "--resolution", "1d")
    assert code == 0, summary
    assert summary["reconciled"] is True
    day = summary["resolutions"]["1d@XNYS"]
    assert (day["ticks_in"], day["ticks_in_bars"], day["outside_session"]) == (9, 6, 3)
    assert bars["resolution"].unique().to_list() == ["1d@XNYS"]
    assert bars["ts_ns"].to_list() == [
        ny("2024-11-26 09:30"),
        ny("2024-11-29 09:30"),
        ny("2024-12-02 09:30"),
    ]
    assert day["gaps"] == 1 and day["gaps_filled"] == 0
    assert day["first_gaps"] == ["SPY 2024-11-27T14:30Z"]


def test_fill_gaps_writes_flat_bars(mdp: Mdp, tmp_path: Path) -> None:
    code, summary, bars = run(mdp, tmp_path, "--resolution", "1d", "--fill-gaps")
    assert code == 0, summary
    assert summary["bars_written"] == summary["bars_built"] == 4
    flat = bars.filter(pl.col("ts_ns") == ny("2024-11-27 09:30")).row(0, named=True)
    assert flat["open"] == flat["high"] == flat["low"] == flat["close"] == 102.0
    assert (flat["volume"], flat["trades"], flat["vwap"]) == (0.0, 0, None)


def test_session_aligned_hours(mdp: Mdp, tmp_path: Path) -> None:
    code, summary, bars = run(mdp, tmp_path, "--resolution", "1h", "--align", "session")
    assert code == 0, summary
    hours = bars["ts_ns"].to_list()
    assert ny("2024-11-26 10:30") in hours and ny("2024-11-26 15:30") in hours
    # 11-26: 4 empty hours between the 09:30, 10:30 and 15:30 bars; 11-27: all 7; 11-29
    # (early close): 10:30 and 11:30 between the 09:30 and 12:30 bars.
    assert summary["resolutions"]["1h@XNYS"]["gaps"] == 4 + 7 + 2


def test_fill_gaps_needs_a_calendar(mdp: Mdp, tmp_path: Path) -> None:
    path = write_ticks(tmp_path / "spy.csv")
    result = mdp("run", "--input", str(path), "--symbol", "SPY", "--fill-gaps")
    assert result.exit_code == 2
    assert "--fill-gaps needs --calendar" in result.stderr
