"""``--resume`` with ``--allowed-lateness``: the retained windows go into the checkpoint.

One file in arrival order (a replay of one file keeps its row order) with 10% of the trades up to
110 s late is replayed, stopped part-way, and resumed: the table, revisions included, must equal
an uninterrupted run's, and a checkpoint made with another allowed lateness is refused.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

from market_data_pipeline.config import RunSettings
from market_data_pipeline.runtime import execute

T0_MS = 1_704_186_000_000  # 2024-01-02T09:00:00Z
ROWS = 30_000  # two symbols, one trade each per 0.5 s: about 2 hours of event time


def _arrived(path: Path) -> Path:
    rng = np.random.default_rng(4)
    ts = np.array([T0_MS + (i // 2) * 500 for i in range(ROWS)])
    delay = np.where(rng.random(ROWS) < 0.1, rng.integers(0, 110_000, ROWS), 0)
    frame = pl.DataFrame(
        {
            "symbol": [("AAA", "BBB")[i % 2] for i in range(ROWS)],
            "ts": ts,
            "price": [100.0 + (i * 7919 % 400) * 0.05 for i in range(ROWS)],
            "size": [1 + i % 9 for i in range(ROWS)],
        }
    )
    order = np.argsort(ts + delay, kind="stable")
    frame[order].write_csv(path)
    return path


def _settings(csv: Path, sink: str, **values: Any) -> RunSettings:
    base = {
        "input": [str(csv)],
        "sink": sink,
        "resolution": "1m,5m",
        "grace": "1s",
        "allowed_lateness": "2m",
        "resume": True,
        "checkpoint_interval": 0.05,
    }
    return RunSettings.model_validate({**base, **values})


def _table(sink: str) -> pl.DataFrame:
    with sqlite3.connect(sink.removeprefix("sqlite:///")) as conn:
        rows = conn.execute(
            "SELECT symbol, resolution, ts, open, high, low, close, volume, trades, revision"
            " FROM bars ORDER BY symbol, resolution, ts"
        ).fetchall()
    names = ["symbol", "resolution", "ts", "open", "high", "low", "close", "volume", "trades"]
    return pl.DataFrame(rows, schema=[*names, "revision"], orient="row")


async def _stopped(csv: Path, sink: str) -> None:
    report = await execute(_settings(csv, sink, speed=3000, duration=1.0))
    assert report.exit_code == 0 and report.stopped_by == "duration", report.error


async def test_a_stopped_replay_resumes_to_the_uninterrupted_table_and_revisions(
    tmp_path: Path,
) -> None:
    csv = _arrived(tmp_path / "arrived.csv")
    sink, reference = f"sqlite:///{tmp_path / 'r.db'}", f"sqlite:///{tmp_path / 'ref.db'}"
    await _stopped(csv, sink)
    report = await execute(_settings(csv, sink))
    assert report.exit_code == 0 and report.reconciled, report.error
    assert report.source["resumed_rows"] > 0
    clean = await execute(_settings(csv, reference, resume=False))
    revisions = clean.resolutions["1m"].revisions
    assert clean.exit_code == 0 and revisions is not None and revisions.revising_ticks > 100
    want = _table(reference)
    assert (want.get_column("revision") > 0).sum() > 10
    assert_frame_equal(_table(sink), want)


async def test_a_checkpoint_of_another_allowed_lateness_is_refused(tmp_path: Path) -> None:
    csv = _arrived(tmp_path / "arrived.csv")
    sink = f"sqlite:///{tmp_path / 'r.db'}"
    await _stopped(csv, sink)
    report = await execute(_settings(csv, sink, allowed_lateness="5m"))
    assert report.exit_code == 2
    assert "allowed_lateness_ns" in (report.error or "")
