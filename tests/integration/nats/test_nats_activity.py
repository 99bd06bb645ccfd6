"""Activity bars through NATS: an unfinished bar is written incomplete, then completed in place."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import polars as pl
from polars.testing import assert_frame_equal

from market_data_pipeline.config import RunSettings
from market_data_pipeline.publish import publish_source
from market_data_pipeline.runtime import execute
from market_data_pipeline.sinks import read_bars
from market_data_pipeline.sources.synthetic import SyntheticSource

START = "2024-01-02T09:00:00Z"
SYMBOLS = ["AAA", "BBB", "CCC"]
RESOLUTIONS = "1s,250tick,4000volume,400000value"
TICKS = 9_000


async def _ticks() -> pl.DataFrame:
    source = SyntheticSource(symbols=SYMBOLS, ticks=TICKS, seed=11, start_ns=1_704_186_000 * 10**9)
    return pl.concat([frame async for frame in source.batches()])


async def _frames(frame: pl.DataFrame) -> AsyncIterator[pl.DataFrame]:
    for start in range(0, frame.height, 700):  # messages that cut bars anywhere
        yield frame.slice(start, 700)


def _settings(sink: str, **values: Any) -> RunSettings:
    return RunSettings.model_validate(
        {"sink": sink, "resolution": RESOLUTIONS, "idle_timeout": 1.0, **values}
    )


async def test_a_restart_completes_the_incomplete_bars_and_equals_one_uninterrupted_run(
    nats_url: str, stream_name: str, tmp_path: Path
) -> None:
    ticks = await _ticks()
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    whole = await execute(
        RunSettings.model_validate(
            {"sink": reference, "resolution": RESOLUTIONS, "ticks": TICKS, "seed": 11,
             "symbols": SYMBOLS, "start": START}
        )
    )  # fmt: skip
    assert whole.exit_code == 0, whole.error

    sink = f"sqlite:///{tmp_path / 'nats.db'}"
    prefix = stream_name.lower()
    first_half, second_half = ticks.head(TICKS // 2 + 13), ticks.tail(TICKS - TICKS // 2 - 13)
    await publish_source(_frames(first_half), url=nats_url, stream=stream_name, prefix=prefix)
    first = await execute(_settings(sink, source="nats", stream=stream_name))
    assert first.exit_code == 0 and first.reconciled, first.error
    cut = read_bars(sink)
    unfinished = cut.filter(pl.col("incomplete"))
    # A symbol and activity resolution that stopped inside a bar wrote it as incomplete: its
    # last bar, one at most per symbol and resolution, never a time bar.
    assert len(SYMBOLS) <= unfinished.height <= len(SYMBOLS) * 3
    last = cut.group_by("symbol", "resolution").agg(pl.col("ts_ns").max())
    assert (
        unfinished.select("symbol", "resolution", "ts_ns").join(last, on=list(last.columns)).height
        == unfinished.height
    )
    assert "1s" not in unfinished.get_column("resolution").to_list()

    await publish_source(_frames(second_half), url=nats_url, stream=stream_name, prefix=prefix)
    second = await execute(_settings(sink, source="nats", stream=stream_name))
    assert second.exit_code == 0 and second.reconciled, second.error
    got, want = read_bars(sink), read_bars(reference)
    # The incomplete bars were replaced under their keys, not written a second time.
    assert got.height == want.height
    assert_frame_equal(got.drop("vwap"), want.drop("vwap"))
    assert_frame_equal(got.select("vwap"), want.select("vwap"), check_exact=False, rel_tol=1e-12)
    finished = unfinished.select("symbol", "resolution", "ts_ns").join(
        got, on=["symbol", "resolution", "ts_ns"]
    )
    assert finished.height == unfinished.height
    assert finished.get_column("trades").sum() > unfinished.get_column("trades").sum()
