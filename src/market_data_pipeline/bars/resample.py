"""Guards for resampling replayed bars into coarser ones."""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from ..errors import UsageError
from .resolution import Resolution


def refuse_upsampling(bars: pl.DataFrame, resolutions: Sequence[Resolution]) -> None:
    """Raise ``UsageError`` when input bars are further apart than the finest resolution.

    Bars cannot be split: 1m bars "resampled" to 30s would only be relabelled. The smallest gap
    between two bars of one symbol is a lower bound of the input width, so sparse input (bars
    missing for quiet minutes) is never refused wrongly.
    """
    gaps = (
        bars.select("symbol", "ts_ns")
        .unique()
        .sort("symbol", "ts_ns")
        .select(pl.col("ts_ns").diff().over("symbol").alias("gap"))
        .filter(pl.col("gap") > 0)
    )
    if gaps.is_empty():
        return
    smallest_gap = int(gaps["gap"].min())  # type: ignore[arg-type]
    finest = min(resolutions, key=lambda res: res.ns)
    if finest.ns < smallest_gap:
        raise UsageError(
            f"cannot build {finest.label} bars from input bars {_duration(smallest_gap)} apart:"
            " bars cannot be split; choose a resolution of at least that width"
        )


def _duration(ns: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if ns % (size * 1_000_000_000) == 0:
            return f"{ns // (size * 1_000_000_000)}{unit}"
    return f"{ns / 1e9:g}s"
