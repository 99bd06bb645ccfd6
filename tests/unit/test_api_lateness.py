"""``mdp.bars(..., allowed_lateness=)`` takes rows in arrival order, as ``mdp run`` does."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

import market_data_pipeline as mdp
from market_data_pipeline.errors import BadInputError

T0 = datetime(2024, 1, 2, 9, 30, tzinfo=UTC)


def _arrived(rows: int = 400) -> pl.DataFrame:
    """Trades of two symbols, 1.5 s apart, each arriving up to 20 s late."""
    times = [T0 + timedelta(seconds=1.5 * i) for i in range(rows)]
    delays = [timedelta(seconds=(i * 7919) % 21) for i in range(rows)]
    frame = pl.DataFrame(
        {
            "timestamp": times,
            "symbol": ["ES" if i % 3 else "NQ" for i in range(rows)],
            "price": [100 + (i * 31 % 17) * 0.25 for i in range(rows)],
            "size": [1 + i % 4 for i in range(rows)],
            "_at": [t + d for t, d in zip(times, delays, strict=True)],
        }
    )
    return frame.sort("_at", maintain_order=True).drop("_at")


def test_the_frame_gives_the_table_mdp_run_leaves(tmp_path: Path) -> None:
    arrived = _arrived()
    csv = tmp_path / "arrived.csv"
    arrived.write_csv(csv)
    db = tmp_path / "bars.db"
    report = mdp.run(
        input=str(csv), resolution="1m,5s", sink=f"sqlite:///{db}", grace="0s",
        allowed_lateness="30s",
    )  # fmt: skip
    assert report.exit_code == 0 and report.reconciled
    got = mdp.bars(arrived, ["1m", "5s"], allowed_lateness="30s")
    with sqlite3.connect(db) as conn:
        stored = conn.execute(
            "SELECT symbol, resolution, volume, trades, revision FROM bars"
            " ORDER BY symbol, resolution, ts"
        ).fetchall()
    assert got.select("symbol", "resolution", "volume", "trades", "revision").rows() == stored
    assert got.get_column("revision").max() > 0  # type: ignore[operator]


def test_bars_are_those_of_the_sorted_rows() -> None:
    arrived = _arrived()
    got = mdp.bars(arrived, "1m", allowed_lateness="30s")
    assert got.drop("revision").equals(mdp.bars(arrived, "1m"))


def test_a_row_later_than_the_lateness_is_refused() -> None:
    with pytest.raises(BadInputError, match="came after their window had closed"):
        mdp.bars(_arrived(), "5s", allowed_lateness="1s")
