"""Guards for resampling replayed bars into coarser ones."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from ..errors import UsageError
from .resolution import Resolution

_DAY_NS = 86_400 * 1_000_000_000


def input_spacing_ns(bars: pl.DataFrame) -> int | None:
    """Return the input bars' spacing: the gcd of the gaps between bars of one symbol.

    Sparse input (bars missing for quiet minutes) keeps the true spacing: every gap is a whole
    number of bars. None when no symbol has two distinct bar starts.
    """
    gaps = (
        bars.select("symbol", "ts_ns")
        .unique()
        .sort("symbol", "ts_ns")
        .select(pl.col("ts_ns").diff().over("symbol").alias("gap"))
        .filter(pl.col("gap") > 0)
    )
    if gaps.is_empty():
        return None
    return int(np.gcd.reduce(gaps["gap"].to_numpy()))


def refuse_upsampling(bars: pl.DataFrame, resolutions: Sequence[Resolution]) -> None:
    """Raise ``UsageError`` unless every resolution is a whole multiple of the input spacing.

    Bars cannot be split: 1m bars "resampled" to 30s would only be relabelled, and 90m bars
    from 1h ones would each take one and a half input bars. A calendar resolution (a day or
    longer) needs input bars that tile a day (1h, 30m, 1d ...).
    """
    spacing = input_spacing_ns(bars)
    if spacing is None:
        return
    for res in sorted(resolutions, key=lambda r: r.ns):
        if res.ns < spacing:
            raise UsageError(
                f"cannot build {res.label} bars from input bars {_duration(spacing)} apart:"
                " bars cannot be split; choose a resolution of at least that width"
            )
        if not _whole_multiple(res, spacing):
            raise UsageError(
                f"cannot build {res.label} bars from input bars {_duration(spacing)} apart:"
                f" {res.label} is not a whole multiple of {_duration(spacing)}"
            )


def _whole_multiple(res: Resolution, spacing: int) -> bool:
    if not res.is_calendar:
        return res.ns % spacing == 0
    if spacing < _DAY_NS:
        return _DAY_NS % spacing == 0
    return spacing % _DAY_NS == 0 and (res.unit != "d" or res.ns % spacing == 0)


def _duration(ns: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        if ns % (size * 1_000_000_000) == 0:
            return f"{ns // (size * 1_000_000_000)}{unit}"
    return f"{ns / 1e9:g}s"
