"""Which runs let the bar engine hold closing frames (see aggregation/builder.py): sources whose
frames keep coming, and only when no checkpoint commits the open windows."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from market_data_pipeline.aggregation.builder import DEFAULT_MAX_HOLD_S
from market_data_pipeline.config import RunSettings
from market_data_pipeline.runtime import build_pipeline


def _trades(path: Path) -> Path:
    pl.DataFrame(
        {"symbol": ["A", "B"], "ts": [1_700_000_000, 1_700_000_001], "price": [1.0, 2.0]}
    ).with_columns(size=pl.lit(1.0)).write_csv(path)
    return path


@pytest.mark.parametrize(
    ("options", "hold_s"),
    [
        ({}, DEFAULT_MAX_HOLD_S),  # a replay as fast as it reads
        ({"speed": 1.0}, 0.0),  # at the recorded pace it may go quiet
        ({"resume": True}, 0.0),  # its checkpoints commit the open windows
    ],
)
def test_replays_hold_frames_only_when_fast_and_not_checkpointed(
    tmp_path: Path, options: dict[str, object], hold_s: float
) -> None:
    settings = RunSettings.model_validate(
        {"input": [str(_trades(tmp_path / "t.csv"))], "sink": f"sqlite:///{tmp_path}/b.db"}
        | options
    )
    pipeline = build_pipeline(settings)
    assert pipeline.engine.max_hold_s == hold_s


def test_the_generator_holds_frames(tmp_path: Path) -> None:
    settings = RunSettings.model_validate({"ticks": 10, "sink": f"sqlite:///{tmp_path}/b.db"})
    pipeline = build_pipeline(settings)
    assert pipeline.engine.max_hold_s == DEFAULT_MAX_HOLD_S
