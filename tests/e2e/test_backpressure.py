"""End to end with a deliberately slow store: the source pauses and resumes, nothing is lost."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

from market_data_pipeline.config import load_settings
from market_data_pipeline.errors import SinkError
from market_data_pipeline.runtime import execute
from market_data_pipeline.sinks import read_bars
from market_data_pipeline.sinks.sqlite import SqliteSink


class SlowSqliteSink(SqliteSink):
    """The real SQLite sink, slowed down: every write takes at least ``delay_s``."""

    def __init__(self, path: str, delay_s: float) -> None:
        super().__init__(path)
        self.delay_s = delay_s

    def _upsert_sync(self, bars: pl.DataFrame) -> None:
        time.sleep(self.delay_s)
        super()._upsert_sync(bars)


async def test_slow_sink_pauses_the_source_and_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "slow.db"
    settings = load_settings(
        config_file=None,
        environ={},
        flags={
            "ticks": 300_000,
            "resolution": "1s",
            "queue_capacity": 400,
            "batch_rows": 40,
            "batch_interval": 0.01,
            "dwell": 0.05,
            "soft_scale": 1.0,  # only a pause can hold this source back: exercise it
            "sink": f"sqlite:///{db}",
        },
    )
    report = await execute(settings, sink=SlowSqliteSink(str(db), delay_s=0.05))

    assert report.exit_code == 0, report.error
    assert report.reconciled
    provider = report.feedback["providers"]["synthetic"]
    assert provider["seconds_at_level"]["hard"] > 0, "the source was never paused"
    assert provider["rate_changes"] >= 2, "the rate never came back after the pause"
    assert provider["scale"] == 1.0
    assert report.write is not None and report.write.max_depth <= 400
    stored = read_bars(f"sqlite:///{db}")
    assert stored.height == report.bars_built == report.bars_written
    assert int(stored["trades"].sum()) == 300_000


class FailingSqliteSink(SqliteSink):
    """The real SQLite sink, whose store goes down for good after ``healthy_writes`` writes."""

    def __init__(self, path: str, healthy_writes: int) -> None:
        super().__init__(path)
        self.healthy_writes = healthy_writes

    def _upsert_sync(self, bars: pl.DataFrame) -> None:
        if self.healthy_writes <= 0:
            raise SinkError("disk I/O error")
        self.healthy_writes -= 1
        super()._upsert_sync(bars)


async def test_store_that_stays_down_fails_the_run_with_the_unwritten_count(
    tmp_path: Path,
) -> None:
    db = tmp_path / "down.db"
    settings = load_settings(
        config_file=None,
        environ={},
        flags={
            "ticks": 100_000,
            "resolution": "1s",
            "batch_rows": 10,
            "batch_interval": 0.01,
            "write_attempts": 2,
            "sink": f"sqlite:///{db}",
        },
    )
    report = await execute(settings, sink=FailingSqliteSink(str(db), healthy_writes=3))

    assert report.exit_code == 1
    assert report.status == "failed"
    assert report.error is not None and "bars not written" in report.error
    assert report.bars_written == 30 == read_bars(f"sqlite:///{db}").height
    assert report.bars_unwritten == report.bars_built - 30 > 0
    assert not report.reconciled


async def test_replay_whose_store_fails_reports_nothing_written_and_rolls_back(
    tmp_path: Path,
) -> None:
    """A transactional replay that loses its store commits nothing and says so exactly."""
    from .conftest import write_trades_csv

    csv = write_trades_csv(tmp_path / "trades.csv", 6_000)
    db = tmp_path / "replay.db"
    sink = FailingSqliteSink(str(db), healthy_writes=2)
    sink.transactional = True
    settings = load_settings(
        config_file=None,
        environ={},
        flags={
            "input": str(csv),
            "resolution": "1m",
            "batch_rows": 5,
            "batch_interval": 0.01,
            "write_attempts": 2,
            "sink": f"sqlite:///{db}",
        },
    )
    report = await execute(settings, sink=sink)

    assert report.exit_code == 1
    assert report.stopped_by == "error"
    assert report.bars_written == 0
    assert report.bars_unwritten == report.bars_built > 0
    assert not report.reconciled
    assert read_bars(f"sqlite:///{db}").height == 0
