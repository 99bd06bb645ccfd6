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

RUN_ROWS = 4  # group the runs of a frame when they hold this many rows on average


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
    column = frame.get_column("ts_ns")
    if column.is_sorted():
        return frame.group_by("symbol").agg(*spans), True
    symbol = frame.get_column("symbol")
    ts = column.to_numpy()
    switch = (symbol.slice(1) != symbol.slice(0, len(ts) - 1)).to_numpy()
    if (~switch & (ts[1:] < ts[:-1])).any():  # a symbol's time falls from one row to the next
        return frame.group_by("symbol").agg(*spans), False
    # Runs of rows of one symbol, each in time order: the symbol's items are in order when each
    # of its runs starts at or above the end of its previous run. Each symbol's runs go into
    # lists (a gather, like min and max; polars keeps row order within a group) and are compared
    # in numpy over all symbols at once: an expression such as diff() inside agg runs once per
    # group and cost three times as much with thousands of symbols.
    starts = np.flatnonzero(np.concatenate(([True], switch)))
    if RUN_ROWS * len(starts) > len(ts):  # short runs: every row is its own run
        seen = frame.group_by("symbol").agg(*spans, pl.col("ts_ns").alias("times"))
        times = seen.get_column("times")
        return seen.drop("times"), _rising(times, times)
    ends = np.append(starts[1:] - 1, len(ts) - 1)
    runs = pl.DataFrame({"symbol": symbol.gather(starts), "first": ts[starts], "last": ts[ends]})
    seen = runs.group_by("symbol").agg(
        pl.col("first").min().alias("min_ts_ns"),
        pl.col("last").max().alias("max_ts_ns"),
        "first",
        "last",
    )
    return seen.drop("first", "last"), _rising(seen["first"], seen["last"])


def _rising(firsts: pl.Series, lasts: pl.Series) -> bool:
    """Tell whether, in every row of two list columns of runs (first and last time of each run
    of one group, in order), each run starts at or above the end of the run before it."""
    falls = firsts.explode().to_numpy()[1:] < lasts.explode().to_numpy()[:-1]
    begins = np.cumsum(firsts.list.len().to_numpy())[:-1]  # where a group's runs begin
    falls[begins - 1] = False  # one group's last run against the next group's first
    return not bool(falls.any())
