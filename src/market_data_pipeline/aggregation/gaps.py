"""Gaps: in-session windows without ticks between two bars of one symbol, and flat bars for them.

With a trading calendar, every window that meets a session between a symbol's first and last bar
should hold a bar. ``GapTracker.observe`` sees the bars as the engine emits them (in window
order per symbol and resolution), counts the windows it skipped and, with ``fill=True``, returns
a flat bar for each: open = high = low = close = the previous bar's close, volume 0, trades 0,
vwap null. Windows before a symbol's first bar or after its last are not gaps.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from ..frames import BAR_SCHEMA
from .calendars import Windows

FIRST_GAPS_LISTED = 5


@dataclass(slots=True)
class GapCount:
    """Gaps of one resolution: how many, how many filled, the first few (symbol, start ns)."""

    gaps: int = 0
    filled: int = 0
    first: list[tuple[str, int]] = field(default_factory=list)


class GapTracker:
    """Count (and optionally fill) in-session windows without ticks, per resolution label."""

    def __init__(self, windows: Mapping[str, Windows], *, fill: bool) -> None:
        self._windows = {w.label: w for w in windows.values() if w.sessions is not None}
        self.fill = fill
        self.counts = {label: GapCount() for label in self._windows}
        self._last: dict[tuple[str, str], tuple[int, float]] = {}  # -> (window start, close)

    def observe(self, bars: pl.DataFrame) -> pl.DataFrame:
        """Count the gaps ``bars`` reveal; return the flat bars to write (empty unless filling)."""
        if not self._windows or bars.height == 0:
            return bars.clear()
        flats: list[pl.DataFrame] = []
        ordered = bars.filter(pl.col("resolution").is_in(list(self._windows)))
        for (label, symbol), group in ordered.sort("ts_ns").group_by(
            "resolution", "symbol", maintain_order=True
        ):
            flat = self._observe_symbol(str(label), str(symbol), group)
            if flat is not None:
                flats.append(flat)
        return pl.concat(flats) if flats else bars.clear()

    def _observe_symbol(self, label: str, symbol: str, group: pl.DataFrame) -> pl.DataFrame | None:
        windows = self._windows[label]
        starts = group["ts_ns"].to_numpy()
        closes = group["close"].to_numpy()
        last = self._last.get((label, symbol))
        self._last[(label, symbol)] = (int(starts[-1]), float(closes[-1]))
        if last is not None:
            starts = np.concatenate([[last[0]], starts])
            closes = np.concatenate([[last[1]], closes])
        if len(starts) < 2:
            return None
        ends = windows.bounds(pl.Series(starts[:-1], dtype=pl.Int64)).end.to_numpy()
        following = starts[1:]
        # Only a bar that does not start where the previous one ended can follow a gap.
        jumps = np.flatnonzero(ends != following)
        if not len(jumps):
            return None
        lo, hi = ends[jumps], following[jumps]
        candidates = windows.session_windows(int(lo.min()), int(hi.max()))
        counts = np.searchsorted(candidates, hi) - np.searchsorted(candidates, lo)
        found = candidates[_spans(np.searchsorted(candidates, lo), counts)]
        if not len(found):
            return None
        count = self.counts[label]
        count.gaps += len(found)
        room = FIRST_GAPS_LISTED - len(count.first)
        count.first += [(symbol, int(ts)) for ts in found[: max(room, 0)]]
        if not self.fill:
            return None
        count.filled += len(found)
        return _flat_bars(label, symbol, found, np.repeat(closes[jumps], counts).tolist())


def _spans(firsts: np.ndarray[Any, Any], counts: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Return the indices ``first, first + 1, ... first + count - 1`` of every span, in order."""
    total = int(counts.sum())
    offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.asarray(np.repeat(firsts, counts) + offsets)


def _flat_bars(
    label: str, symbol: str, starts: np.ndarray[Any, Any], closes: list[float]
) -> pl.DataFrame:
    n = len(starts)
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "resolution": [label] * n,
            "ts_ns": starts,
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": [0.0] * n,
            "vwap": [None] * n,
            "trades": [0] * n,
            "end_ts_ns": [None] * n,
            "incomplete": [False] * n,
        },
        schema=BAR_SCHEMA,
    )
