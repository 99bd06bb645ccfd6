"""Cheap per-frame helpers of the bar engine: input checks and the quick lateness test.

They work on Series and numpy arrays rather than polars queries, because each query costs tens of
microseconds and a stream of small frames would pay that on every frame.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ..errors import BadInputError
from ..frames import BAR_SCHEMA

_EMPTY_BARS = pl.DataFrame(schema=BAR_SCHEMA)


def empty_bar_frame() -> pl.DataFrame:
    """Return an empty frame in ``BAR_SCHEMA``."""
    return _EMPTY_BARS.clear()


def conform(
    frame: pl.DataFrame, schema: dict[str, pl.DataType], required: tuple[str, ...], *, what: str
) -> pl.DataFrame:
    """Keep the ``schema`` columns in order and type; reject gaps and nulls in ``required``."""
    missing = [name for name in schema if name not in frame.columns]
    if missing:
        raise BadInputError(f"{what} frame lacks column(s) {', '.join(missing)}")
    columns = []
    for name, dtype in schema.items():
        column = frame.get_column(name)
        if column.dtype != dtype:
            try:
                column = column.cast(dtype)
            except pl.exceptions.PolarsError as exc:
                raise BadInputError(f"cannot read as {dtype}", field=name) from exc
        if name in required and column.null_count():
            raise BadInputError(f"{column.null_count()} null value(s)", field=name)
        columns.append(column)
    return pl.DataFrame(columns)


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
