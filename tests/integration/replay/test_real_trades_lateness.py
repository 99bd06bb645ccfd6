"""The real E-mini trades (500,000) arriving up to 5 s late: allowed lateness gives the bars of
the sorted file.

Each trade is delayed by a random 0-5 s before it arrives (so the order is shuffled within 5 s
windows that straddle the minute boundaries). With ``--grace 0 --allowed-lateness 10s`` every
trade lands in its bar, and the 1m bars equal those of the same trades sorted by time; without
allowed lateness thousands are late. Skips when the shared data set is absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

import market_data_pipeline as mdp
from market_data_pipeline.cli.app import app
from market_data_pipeline.sinks import read_bars

ROOT = Path(__file__).resolve().parents[3]
DATA = Path(os.environ.get("MDP_SHARED_DATA", ROOT.parent / "shared" / "data"))
TRADES = DATA / "es-trades-2013-09-01.csv.gz"

pytestmark = pytest.mark.skipif(not TRADES.exists(), reason=f"{TRADES} is not here")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The trades in arrival order (each up to 5 s late) and the same sorted by time."""
    frame = pl.read_csv(TRADES).with_columns(
        pl.col("DateTime").str.to_datetime("%Y-%m-%d %H:%M:%S%.3f")
    )
    delay = np.random.default_rng(24).integers(0, 5_000, frame.height)
    arrive = pl.col("DateTime").dt.epoch("ms") + pl.Series(delay)
    arrived = frame.sort(arrive, maintain_order=True)
    folder = tmp_path_factory.mktemp("es")
    arrived.write_csv(folder / "arrived.csv")
    # Stable: trades at one time keep their arrival order, which decides open and close.
    arrived.sort("DateTime", maintain_order=True).write_csv(folder / "sorted.csv")
    return folder / "arrived.csv", folder / "sorted.csv"


def _run(csv: Path, sink: str, *extra: str) -> dict[str, object]:
    args = ["run", "-i", str(csv), "-s", "ES", "-r", "1m", "--grace", "0", "--sink", sink]
    result = CliRunner().invoke(app, [*args, *extra, "--json"])
    assert result.exit_code == 0, result.output
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def test_late_trades_within_the_lateness_give_the_bars_of_the_sorted_file(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    arrived, ordered = files
    want = f"sqlite:///{tmp_path / 'sorted.db'}"
    got = f"sqlite:///{tmp_path / 'arrived.db'}"
    _run(ordered, want)
    summary = _run(arrived, got, "--allowed-lateness", "10s")
    one = summary["resolutions"]["1m"]  # type: ignore[index]
    assert one["ticks_late"] == 0 and one["ticks_in_bars"] == 500_000
    assert one["revising_ticks"] > 1_000 and one["revised"] > 100  # the order was shuffled
    _same(read_bars(got), read_bars(want))


def test_without_lateness_those_trades_are_late(files: tuple[Path, Path]) -> None:
    summary = _run(files[0], "memory://es-late")
    assert summary["resolutions"]["1m"]["ticks_late"] > 1_000  # type: ignore[index]


def test_the_frame_api_gives_the_same_bars(files: tuple[Path, Path]) -> None:
    arrived, ordered = (pl.read_csv(path, try_parse_dates=True) for path in files)
    got = mdp.bars(arrived, "1m", symbol="ES", allowed_lateness="10s")
    assert got.get_column("revision").max() > 0  # type: ignore[operator]
    _same(got.drop("revision"), mdp.bars(ordered, "1m", symbol="ES"))


def _same(got: pl.DataFrame, want: pl.DataFrame) -> None:
    # vwap is a float sum: the order the trades were added in changes its last bits.
    assert_frame_equal(got.drop("vwap"), want.drop("vwap"))
    assert_frame_equal(got.select("vwap"), want.select("vwap"), check_exact=False, rel_tol=1e-12)
