"""Which window a tick falls in: the one place that maps event times to window starts and ends.

The bar engine calls only ``window_bounds``; it never computes ``start + ns`` itself, so windows
of uneven length (calendar months, trading sessions) can be added here without touching it. A
window is the half-open interval ``[start_ns, end_ns)``; ``end_ns`` decides when it closes.
A ``layout`` (``calendars.Windows``: zones, calendar resolutions, sessions) replaces the epoch
alignment when the run names a zone or a calendar.
"""

from __future__ import annotations

import polars as pl

from .calendars import Windows
from .resolution import Resolution


def window_bounds(
    res: Resolution, ts_ns: pl.Series, layout: Windows | None = None
) -> tuple[pl.Series, pl.Series]:
    """Return the start and end (epoch ns) of the ``res`` window holding each of ``ts_ns``.

    Fixed-width resolutions are aligned to the Unix epoch (UTC); times before 1970 fall in the
    window below (floor, not truncation).
    """
    if layout is not None:
        bounds = layout.bounds(ts_ns)
        return bounds.start.alias("window"), bounds.end.alias("window_end")
    start = (ts_ns - ts_ns % res.ns).alias("window")
    return start, (start + res.ns).alias("window_end")


def window_end_of(res: Resolution, ts_ns: int, layout: Windows | None = None) -> int:
    """Return the end of the ``res`` window holding the single time ``ts_ns``."""
    _, end = window_bounds(res, pl.Series([ts_ns], dtype=pl.Int64), layout)
    value = end.item()
    assert isinstance(value, int)
    return value
