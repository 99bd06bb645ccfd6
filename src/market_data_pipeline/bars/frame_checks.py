"""The bar engine's quick lateness test, run on every frame.

It works on numpy arrays rather than a polars query, because each query costs tens of
microseconds and a stream of small frames would pay that on every frame (``frames.conform``,
the input check, is written the same way).
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
