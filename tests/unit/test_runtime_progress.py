"""The live line's share of a replay: rows the bar engine has processed over the input's rows."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from market_data_pipeline.config import RunSettings
from market_data_pipeline.runtime import build_pipeline

ROWS = 10_000


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_the_share_counts_ticks_processed_not_ticks_read_ahead(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"t{suffix}"
    frame = pl.DataFrame(
        {"symbol": "A", "ts": pl.int_range(1_700_000_000, 1_700_000_000 + ROWS, eager=True)}
    ).with_columns(price=pl.lit(1.0), size=pl.lit(1.0))
    frame.write_csv(path) if suffix == ".csv" else frame.write_parquet(path)
    settings = RunSettings.model_validate(
        {"input": [str(path)], "sink": f"sqlite:///{tmp_path}/b.db"}
    )
    pipeline = build_pipeline(settings)
    pipeline.source.rows_not_read(0)  # waits for a CSV's row count
    # Read from the file, not yet through the bar engine: none of it is done.
    pipeline.ticks_pulled, pipeline.ticks_admitted = ROWS, 0
    assert pipeline.progress().read_fraction == 0.0
    pipeline.ticks_admitted = ROWS // 4
    assert pipeline.progress().read_fraction == 0.25
