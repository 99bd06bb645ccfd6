"""The bar engine's quick tests of a frame's time order, run on every frame.

``late_possible`` works on numpy arrays rather than a polars query, because each query costs
tens of microseconds and a stream of small frames would pay that on every frame
(``frames.conform``, the input check, is written the same way). ``symbol_spans`` is one
group-by the engine needs anyway for the watermarks; it also tells whether each symbol's items
come in time order, which a frame fetched from a log of per-symbol subjects usually does even
when the subjects interleave.
"""

from __future__ import annotations

import numpy as np
import polars as pl


def late_possible(ts_ns: pl.Series, state_max_ns: int | None, grace_ns: int) -> bool:
    """Tell whether any item may be late: lie below the running max of all symbols - grace.

    A late item lies below its own symbol's running max, which never exceeds the max over all
    symbols; so ``False`` is exact and ``True`` only asks for the per-symbol test.
    """
    ts = ts_ns.to_numpy()
    running = np.maximum.accumulate(ts)
    if state_max_ns is not None:
        running = np.maximum(running, state_max_ns)
        if ts[0] < state_max_ns - grace_ns:
            return True
    return bool((ts[1:] < running[:-1] - grace_ns).any())


def symbol_spans(frame: pl.DataFrame) -> tuple[pl.DataFrame, bool]:
    """Return (symbol, ``min_ts_ns``, ``max_ts_ns``) per symbol of a non-empty frame, and whether
    every symbol's ``ts_ns`` is non-decreasing in row order."""
    spans = (pl.col("ts_ns").min().alias("min_ts_ns"), pl.col("ts_ns").max().alias("max_ts_ns"))
    if frame.get_column("ts_ns").is_sorted():
        return frame.group_by("symbol").agg(*spans), True
    # Each group's times as a list (a gather, like min and max; polars keeps row order within a
    # group), tested in numpy over all groups at once: an expression such as diff() inside agg
    # runs once per group and cost three times as much with thousands of symbols.
    seen = frame.group_by("symbol").agg(*spans, pl.col("ts_ns").alias("times"))
    lists = seen.get_column("times")
    times = lists.explode().to_numpy()
    falls = times[1:] < times[:-1]
    firsts = np.cumsum(lists.list.len().to_numpy())[:-1]  # where a group's times begin
    falls[firsts - 1] = False  # a step from one group's last time to the next group's first
    return seen.drop("times"), not bool(falls.any())
