"""The batch shapes that travel inside the pipeline, and their conversion to Core models.

Ticks and bars move between stages as polars DataFrames (one row per tick or bar), never as one
pydantic object per tick; Core models are built only where a contract is crossed.

Tick frame (``TICK_SCHEMA``), produced by every trade/quote source:
    symbol  str       instrument
    ts_ns   int64     event time, integer nanoseconds since the epoch, UTC
    price   float64   trade price, or the quote mid price ((bid + ask) / 2)
    size    float64   trade size; 0 for quotes
Quote sources add ``bid``, ``ask``, ``bid_size``, ``ask_size`` columns; stages ignore extra columns.

Bar frame (``BAR_SCHEMA``), produced by the bar builder and written by sinks:
    symbol, resolution (e.g. "1m"), ts_ns (window START), open, high, low, close, volume,
    vwap (null when volume is 0), trades (ticks in the bar),
    end_ts_ns (activity bars: the last tick's event time; null for time bars, whose window ends
    at ts + resolution), incomplete (activity bars written before reaching their threshold)
Bar input frames (``BAR_INPUT_SCHEMA``, replayed bar files) are the same without ``resolution``;
their ``vwap`` and ``trades`` may be null.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from . import core
from .errors import BadInputError

TICK_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "ts_ns": pl.Int64(),
    "price": pl.Float64(),
    "size": pl.Float64(),
}

QUOTE_EXTRA_SCHEMA: dict[str, pl.DataType] = {
    "bid": pl.Float64(),
    "ask": pl.Float64(),
    "bid_size": pl.Float64(),
    "ask_size": pl.Float64(),
}

# The ``bars`` table's columns (``defaults.TABLE_COLUMNS``), with the window start as ``ts_ns``.
BAR_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "resolution": pl.String(),
    "ts_ns": pl.Int64(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "vwap": pl.Float64(),
    "trades": pl.Int64(),
    "end_ts_ns": pl.Int64(),
    "incomplete": pl.Boolean(),
}
# Columns time bars fill with a constant (activity bars set them; see aggregation/activity.py).
TIME_BAR_EXTRAS: dict[str, pl.Expr] = {
    "end_ts_ns": pl.lit(None, pl.Int64),
    "incomplete": pl.lit(False),
}

# A bar's identity: the table's primary key, window start as ``ts_ns``; stores keep one row per key.
BAR_KEY = ("symbol", "resolution", "ts_ns")

# Replayed bar files carry no resolution: their bars are the input of resampling.
BAR_INPUT_SCHEMA: dict[str, pl.DataType] = {
    name: dtype
    for name, dtype in BAR_SCHEMA.items()
    if name != "resolution" and name not in TIME_BAR_EXTRAS
}

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EMPTY_BARS = pl.DataFrame(schema=BAR_SCHEMA)


def empty_bars() -> pl.DataFrame:
    """Return an empty bar frame (``BAR_SCHEMA``)."""
    # Clearing a prepared frame is cheaper than building one from the schema, and the bar engine
    # asks for an empty frame on every tick frame that closes no window.
    return _EMPTY_BARS.clear()


def conform(
    frame: pl.DataFrame,
    schema: dict[str, pl.DataType],
    required: tuple[str, ...] = (),
    *,
    what: str,
) -> pl.DataFrame:
    """Return ``frame`` with exactly the ``schema`` columns, in order and type.

    Raise ``BadInputError`` naming the column when one is missing, cannot be cast, or has a null
    among ``required``; ``what`` names the frame in the message ("tick", "bar").
    """
    missing = [name for name in schema if name not in frame.columns]
    if missing:
        raise BadInputError(f"{what} frame lacks column(s) {', '.join(missing)}")
    # Series work rather than a polars query: a query costs tens of microseconds, which a
    # stream of small frames would pay on every frame.
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


def ns_to_datetime(ts_ns: int) -> datetime:
    """Convert integer epoch nanoseconds to an aware UTC datetime (microsecond precision)."""
    return _EPOCH + timedelta(microseconds=ts_ns // 1_000)


def datetime_to_ns(ts: datetime) -> int:
    """Convert a datetime to epoch nanoseconds; a naive datetime is taken as UTC."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def to_decimal(value: float) -> Decimal:
    """Convert a float to the Decimal with the same shortest repr (no binary noise digits)."""
    return Decimal(repr(value))


def bars_from_core(bars: list[core.Bar], resolution_ns: dict[str, int]) -> pl.DataFrame:
    """Convert Core ``Bar`` models (ts = window end) back to a bar frame (ts = window start)."""
    rows = [
        {
            "symbol": bar.symbol,
            "resolution": bar.resolution,
            "ts_ns": datetime_to_ns(bar.ts) - resolution_ns[bar.resolution],
            "open": float(bar.open),
            "high": float(bar.high),
            "low": float(bar.low),
            "close": float(bar.close),
            "volume": float(bar.volume),
            "vwap": None,
            "trades": None,
            "end_ts_ns": None,
            "incomplete": False,
        }
        for bar in bars
    ]
    return pl.DataFrame(rows, schema=BAR_SCHEMA)


def ticks_to_core(frame: pl.DataFrame, kind: str) -> list[core.Trade | core.Quote]:
    """Convert a tick (or bar input) frame to Core ``Trade``/``Quote``/``Bar`` models."""
    if kind == "trades":
        return [
            core.Trade(
                symbol=r["symbol"],
                ts=ns_to_datetime(r["ts_ns"]),
                price=to_decimal(r["price"]),
                size=int(r["size"]),
            )
            for r in frame.iter_rows(named=True)
        ]
    if kind == "quotes":
        return [_quote_to_core(r) for r in frame.iter_rows(named=True)]
    raise ValueError(f"no Core tick model for kind {kind!r}")


def _quote_to_core(r: dict[str, Any]) -> core.Quote:
    def dec(key: str) -> Decimal | None:
        value = r.get(key)
        return None if value is None else to_decimal(value)

    def size(key: str) -> int | None:
        value = r.get(key)
        return None if value is None else int(value)

    return core.Quote(
        symbol=r["symbol"],
        bid=dec("bid"),
        ask=dec("ask"),
        bid_size=size("bid_size"),
        ask_size=size("ask_size"),
        timestamp=ns_to_datetime(r["ts_ns"]),
    )
