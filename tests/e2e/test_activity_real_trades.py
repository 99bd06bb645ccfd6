"""Tick, volume and value bars of 500,000 real E-mini trades (2013-09-01), three thresholds each.

The file lives beside the project (``../shared/data``); without it the test is skipped.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from activity_reference import RefTick, reference_bars
from polars.testing import assert_frame_equal

import market_data_pipeline as mdp
from market_data_pipeline.aggregation.resolution import parse_resolution
from market_data_pipeline.sinks import read_bars

ROOT = Path(__file__).parents[2]
NAME = "es-trades-2013-09-01.csv.gz"
CANDIDATES = [ROOT.parent / "shared" / "data" / NAME, ROOT.parents[1] / "shared" / "data" / NAME]
RESOLUTIONS = [
    "100tick", "1000tick", "10000tick",
    "500volume", "5000volume", "50000volume",
    "1000000value", "10000000value", "100000000value",
]  # fmt: skip


@pytest.fixture(scope="module")
def es_file() -> Path:
    found = next((path for path in CANDIDATES if path.is_file()), None)
    if found is None:
        pytest.skip(f"{NAME} is not in ../shared/data (the real E-mini trades)")
    return found


@pytest.fixture(scope="module")
def api_bars(es_file: Path) -> pl.DataFrame:
    trades = pl.read_csv(es_file)
    return mdp.bars(trades, RESOLUTIONS, symbol="ES").with_columns(
        pl.col("ts").dt.epoch("ns").alias("ts_ns"),
        pl.col("end_ts").dt.epoch("ns").alias("end_ts_ns"),
    )


def test_es_trades_give_the_reference_bars_at_every_threshold(
    es_file: Path, api_bars: pl.DataFrame
) -> None:
    trades = pl.read_csv(es_file, try_parse_dates=True)
    ts = trades.get_column("DateTime").dt.replace_time_zone("UTC").dt.epoch("ns").to_list()
    ticks = [
        RefTick("ES", stamp, price, size)
        for stamp, price, size in zip(ts, trades["Price"], trades["Volume"], strict=True)
    ]
    volume = float(trades["Volume"].sum())
    for label in RESOLUTIONS:
        res = parse_resolution(label)
        want, late = reference_bars(ticks, res.unit, res.threshold, 0, label)
        mine = api_bars.filter(pl.col("resolution") == label)
        assert late == 0
        assert mine.height == len(want) > 1, label
        expected = pl.DataFrame(want).select(mine.drop("ts", "end_ts").columns)
        assert_frame_equal(
            mine.drop("ts", "end_ts"),
            expected,
            check_exact=False,
            rel_tol=1e-12,
            check_dtypes=False,
        )
        assert mine.get_column("volume").sum() == volume  # every contract in exactly one bar
        assert mine.get_column("incomplete").sum() <= 1


def test_a_replay_of_the_file_gives_the_same_bars_as_the_api(
    es_file: Path, api_bars: pl.DataFrame, tmp_path: Path
) -> None:
    sink = f"sqlite:///{tmp_path / 'es.db'}"
    report = mdp.run(input=str(es_file), symbol="ES", resolution=",".join(RESOLUTIONS), sink=sink)
    assert report.exit_code == 0 and report.reconciled, report.error
    stored = read_bars(sink)
    # Stores keep microseconds; the bars' keys are whole microseconds already.
    assert_frame_equal(
        stored.drop("vwap"),
        api_bars.drop("ts", "end_ts", "vwap")
        .select(stored.drop("vwap").columns)
        .sort("symbol", "resolution", "ts_ns"),
    )
