"""The notebook-facing functions: bars from a DataFrame, a whole run from settings.

    import market_data_pipeline as mdp
    bars = mdp.bars(ticks_df, "1m")                     # polars or pandas in, polars out
    report = mdp.run({"ticks": 100_000, "sink": "memory://demo"})
    stored = mdp.read_bars("memory://demo")

Both go through the engine ``mdp run`` uses (``build.engine_for``), so a frame and a file
with the same rows give the same bars.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from . import eventloop
from .build import engine_for
from .config import RunSettings, load_settings, validate_settings
from .defaults import TABLE_COLUMNS
from .errors import BadInputError
from .frames import BAR_KEY
from .report import RunReport
from .runtime import execute
from .sinks import read_bars as _read_bars
from .sources.cleaning import CHECKS, clean
from .sources.columns import ALIASES, map_columns, normalise

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["bars", "read_bars", "run"]


def bars(
    frame: pl.DataFrame | pd.DataFrame,
    resolutions: str | Sequence[str] = "1m",
    *,
    grace: str | timedelta = "0s",
    tz: str = "UTC",
    symbol: str | None = None,
    calendar: str | None = None,
    allowed_lateness: str | timedelta | None = None,
) -> pl.DataFrame:
    """Build OHLCV bars from a frame of trades, quotes or bars; return them as a polars frame.

    Columns are found as in replayed files (``ts``/``time``/``timestamp``, ``price``, ``size``
    or ``volume``, ``symbol``; or ``open``...``volume`` for bars); ``symbol`` names the
    instrument of a frame without a symbol column. A pandas frame's ``DatetimeIndex`` (what
    yfinance and backtesting.py give) is its time column when no column is one. Timestamps
    may be datetimes (naive ones are in ``tz``), ISO strings or epoch numbers. Rows are taken
    in event-time order, so every row is in a bar and every window is emitted, the last ones
    included. A bad row raises ``BadInputError`` naming it; a bad resolution, grace or zone
    raises ``UsageError``. The result has ``symbol, resolution, ts`` (window start, UTC) and
    ``open, high, low, close, volume, vwap, trades, end_ts, incomplete``, sorted; a resolution
    is labelled in its canonical form (``60s`` is ``1m``). Activity resolutions (``1000tick``,
    ``100000volume``, ``1000000value``) give bars whose ``ts`` is the first tick and ``end_ts``
    the last; the last bar of a symbol short of its threshold is ``incomplete``.
    ``1m:bid``/``1m:ask`` build bars of a quote side.

    With ``allowed_lateness`` (e.g. ``"10s"``) rows are taken in the frame's order instead, as
    ``mdp run --grace ... --allowed-lateness ...`` takes a stream: the result is the table that
    run ends with, one row per bar with its ``revision``; a row later than the allowed lateness
    raises ``BadInputError`` (``mdp run`` would count it late).
    """
    labels = resolutions if isinstance(resolutions, str) else ",".join(resolutions)
    in_arrival_order = allowed_lateness is not None
    settings = validate_settings(
        {
            "resolution": labels,
            "grace": _duration(grace),
            "tz": tz,
            "calendar": calendar,
            "allowed_lateness": _duration(allowed_lateness or "0s"),
        }
    )
    engine, _ = engine_for(settings)
    items, kind = _items(_to_arrow(frame), symbol=symbol, tz=tz)
    if not in_arrival_order:
        # The whole frame is at hand: in event-time order no row can come after its window
        # closed, so every row lands in a bar (a stable sort keeps equal times in given order).
        items = items.sort("ts_ns", maintain_order=True)
    add = engine.add_bars if kind == "bars" else engine.add_ticks
    out = pl.concat([add(items), engine.flush()], how="vertical_relaxed")
    late = max(s.ticks_late for s in engine.stats().values())
    if late:  # never drop rows silently
        raise BadInputError(f"{late} rows came after their window had closed")
    if not in_arrival_order:
        return with_datetime(out.sort(BAR_KEY))
    # A revised bar was returned again: the last one returned is the one a store keeps.
    final = out.unique(subset=BAR_KEY, keep="last", maintain_order=True).sort(BAR_KEY)
    if "revision" not in final.columns:
        final = final.with_columns(pl.lit(0, pl.Int64).alias("revision"))
    return with_datetime(final).with_columns(final.get_column("revision"))


def run(settings: RunSettings | Mapping[str, Any] | None = None, **options: Any) -> RunReport:
    """Run the pipeline to its end and return the report (``report.reconciled``, counts).

    ``settings`` is a ``RunSettings`` or a mapping of the same keys as ``mdp run``'s flags
    (``{"input": "trades.csv", "resolution": "1m,5m", "sink": "memory://x"}``); ``options``
    add to it. Works inside a running event loop (Jupyter) too: the run gets its own thread.
    """
    if not isinstance(settings, RunSettings):
        flags = {**(settings or {}), **options}
        settings = load_settings(config_file=None, environ={}, flags=flags)
    elif options:
        settings = validate_settings({**settings.model_dump(by_alias=True), **options})
    return _run_to_end(settings)


def read_bars(url: str, *, table: str | None = None, complete: bool = False) -> pl.DataFrame:
    """Return every bar a store holds (``memory://NAME``, ``sqlite:///x.db``, ``postgresql://``).

    ``table`` names the bars table (default ``bars``; ``schema.table`` in PostgreSQL). Raise
    ``SinkSetupError`` for a store that is not there (no such file, database, table or name) or
    cannot be read, ``UsageError`` for a URL or table name that cannot be one.

    ``complete=True`` leaves out activity bars written before reaching their threshold
    (``incomplete``; a later run that continues them replaces them).
    """
    bars = _read_bars(url, table=table)
    if complete:
        bars = bars.filter(~pl.col("incomplete"))
    return with_datetime(bars)


def with_datetime(bars_frame: pl.DataFrame) -> pl.DataFrame:
    """Return a bar frame with ``ts`` (UTC datetime, window start) in place of ``ts_ns``."""

    def stamp(column: str) -> pl.Expr:
        return pl.from_epoch(pl.col(column), time_unit="ns").dt.replace_time_zone("UTC")

    ts, end = stamp("ts_ns").alias("ts"), stamp("end_ts_ns").alias("end_ts")
    return bars_frame.with_columns(ts, end).select(TABLE_COLUMNS)


def _run_to_end(settings: RunSettings) -> RunReport:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return eventloop.run(execute(settings), source=settings.source)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(eventloop.run, execute(settings), source=settings.source).result()


def _duration(value: str | timedelta) -> str | float:
    return value.total_seconds() if isinstance(value, timedelta) else value


def _to_arrow(frame: Any) -> pa.Table:
    if isinstance(frame, pl.DataFrame):
        return frame.to_arrow()
    if type(frame).__module__.startswith("pandas"):
        return _pandas_to_arrow(frame)
    raise BadInputError(f"expected a polars or pandas DataFrame, not {type(frame).__name__}")


def _pandas_to_arrow(frame: pd.DataFrame) -> pa.Table:
    """Return a pandas frame as Arrow, its ``DatetimeIndex`` as the time column if it has one."""
    import pandas as pd

    if not isinstance(frame.index, pd.DatetimeIndex):
        return pa.Table.from_pandas(frame, preserve_index=False)
    names = [str(name) for name in frame.columns]
    taken = [name for name in names if normalise(name) in ALIASES["ts"]]
    if taken:
        raise BadInputError(
            f"two time columns: the DatetimeIndex {frame.index.name or '(unnamed)'} and"
            f" column {taken[0]!r}; drop one (df.reset_index(drop=True), or drop the column)",
            path="frame",
        )
    ts = frame.index.rename("ts")
    return pa.Table.from_pandas(
        frame.set_axis(ts, axis="index").reset_index(), preserve_index=False
    )


def _items(table: pa.Table, *, symbol: str | None, tz: str) -> tuple[pl.DataFrame, str]:
    """Map and clean the frame's columns exactly as a replayed file's; raise on a bad row."""
    cmap = map_columns(table.column_names, None, "frame")
    if symbol is None and "symbol" not in cmap.index:
        raise BadInputError("no symbol column: pass symbol=, e.g. bars(df, '1m', symbol='ES')")
    fields = list(cmap.index)
    batch = pa.RecordBatch.from_arrays(
        [table.column(cmap.index[f]).combine_chunks() for f in fields], names=fields
    )
    cleaned = clean(batch, cmap.kind, symbol=symbol, ts_unit="auto", blank=None, tz=tz)
    bad = cleaned.code > 0
    if bad.any():
        row = int(bad.arg_max() or 0)
        check = CHECKS[cmap.kind][int(cleaned.code[row]) - 1]
        raise BadInputError(check.reason, path="frame", row=row, field=cmap.name(check.field))
    return cleaned.frame, cmap.kind
