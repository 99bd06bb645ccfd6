"""Partial aggregates of bar windows: build them from ticks or input bars, merge them, finish them.

A partial is one row per (symbol, ``window`` start) holding everything needed to combine it with
later partials of the same window without revisiting ticks (``PARTIAL_SCHEMA``):

    open/open_ts     price and event time of the earliest tick (ties: the first to arrive)
    close/close_ts   price and event time of the latest tick (ties: the last to arrive)
    high, low, volume
    pv               sum(price * size); null when an input bar with volume had no vwap
    trades           ticks in the window; null when an input bar had no trade count
    items            ticks or input bars folded in (the reconciliation counter)

Merging relies on polars keeping row order within each group: frames are concatenated oldest
first, so taking the first row at the minimum event time and the last row at the maximum resolve
event-time ties to the earlier and the later arrival respectively.
"""

from __future__ import annotations

import polars as pl

PARTIAL_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "window": pl.Int64(),
    "open": pl.Float64(),
    "open_ts": pl.Int64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "close_ts": pl.Int64(),
    "volume": pl.Float64(),
    "pv": pl.Float64(),
    "trades": pl.Int64(),
    "items": pl.Int64(),
}
KEYS = ["symbol", "window"]
_EMPTY = pl.DataFrame(schema=PARTIAL_SCHEMA)


def empty_partials() -> pl.DataFrame:
    """Return an empty partial frame."""
    return _EMPTY.clear()


def _first(value: str, ts: str) -> pl.Expr:
    return pl.col(value).filter(pl.col(ts) == pl.col(ts).min()).first()


def _last(value: str, ts: str) -> pl.Expr:
    # Not ``reverse().get(reverse().arg_max())``: polars 2.1 keeps a stale sorted flag on the
    # reversed group and returns the wrong index for groups spanning concatenated chunks.
    return pl.col(value).filter(pl.col(ts) == pl.col(ts).max()).last()


def _sum_or_null(name: str) -> pl.Expr:
    # Plain sum() skips nulls; a window with any unknown part must stay unknown.
    col = pl.col(name)
    return pl.when(col.null_count() == 0).then(col.sum()).otherwise(None)


def tick_partials(ticks: pl.DataFrame) -> pl.DataFrame:
    """Aggregate ticks (``symbol``, ``ts_ns``, ``price``, ``size``, ``window``) per window."""
    return ticks.group_by(KEYS).agg(
        _first("price", "ts_ns").alias("open"),
        pl.col("ts_ns").min().alias("open_ts"),
        pl.col("price").max().alias("high"),
        pl.col("price").min().alias("low"),
        _last("price", "ts_ns").alias("close"),
        pl.col("ts_ns").max().alias("close_ts"),
        pl.col("size").sum().alias("volume"),
        pl.col("price").dot(pl.col("size")).alias("pv"),
        pl.len().cast(pl.Int64).alias("trades"),
        pl.len().cast(pl.Int64).alias("items"),
    )


def bar_items(bars: pl.DataFrame) -> pl.DataFrame:
    """Turn input bars (with a ``window`` column) into one partial row per bar.

    A bar with zero volume carries no weight, so its missing vwap does not matter; a bar with
    volume but no vwap makes the window's vwap unknown.
    """
    pv = pl.when(pl.col("volume") == 0).then(0.0).otherwise(pl.col("vwap") * pl.col("volume"))
    return bars.select(
        "symbol",
        "window",
        "open",
        pl.col("ts_ns").alias("open_ts"),
        "high",
        "low",
        "close",
        pl.col("ts_ns").alias("close_ts"),
        "volume",
        pv.alias("pv"),
        "trades",
        pl.lit(1, pl.Int64).alias("items"),
    )


def merge_partials(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Combine partials of the same windows; pass frames oldest first."""
    frames = [frame for frame in frames if frame.height]
    if not frames:
        return empty_partials()
    combined = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
    return combined.group_by(KEYS).agg(
        _first("open", "open_ts").alias("open"),
        pl.col("open_ts").min(),
        pl.col("high").max(),
        pl.col("low").min(),
        _last("close", "close_ts").alias("close"),
        pl.col("close_ts").max(),
        pl.col("volume").sum(),
        _sum_or_null("pv").alias("pv"),
        _sum_or_null("trades").alias("trades"),
        pl.col("items").sum(),
    )


def finish(partials: pl.DataFrame, label: str) -> pl.DataFrame:
    """Turn partials into ``label`` bars in ``BAR_SCHEMA``, sorted by symbol and window start."""
    vwap = pl.when(pl.col("volume") > 0).then(pl.col("pv") / pl.col("volume")).otherwise(None)
    return partials.sort(KEYS).select(
        "symbol",
        pl.lit(label, pl.String).alias("resolution"),
        pl.col("window").alias("ts_ns"),
        "open",
        "high",
        "low",
        "close",
        "volume",
        vwap.cast(pl.Float64).alias("vwap"),
        "trades",
    )
