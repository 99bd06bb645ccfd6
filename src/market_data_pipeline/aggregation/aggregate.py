"""Partial aggregates of bar windows: build them from ticks or input bars, combine, finish them.

A partial is one row per (``resolution``, symbol, ``window`` start) holding everything needed
to combine it with later partials of the same window without revisiting ticks
(``PARTIAL_SCHEMA``):

    window_end       end of the window (exclusive); the window closes when the watermark passes it
    open/open_ts     price and event time of the earliest tick (ties: the first to arrive)
    close/close_ts   price and event time of the latest tick (ties: the last to arrive)
    high, low, volume
    pv               sum(price * size); null when an input bar with volume had no vwap
    trades           ticks in the window; null when an input bar had no trade count
    items            ticks or input bars folded in (the reconciliation counter)

Every aggregation here is one of polars' plain per-group kernels (first, last, min, max, sum,
count). Expressions such as ``filter(...).first()`` inside ``agg`` run once per group instead,
which made a batch over thousands of symbols dozens of times slower (and slower still with the
thread pool, whose per-group dispatch cost more than it saved). Open and close come from
``first``/``last``: the items of each window must come in event-time order, ties in arrival
order (a stable sort by ``ts_ns``; polars keeps row order within a group).

Ticks that come in long runs of one symbol and window (a log fetch of per-symbol subjects) are
reduced run by run instead, and only the runs are grouped (``_run_partials``).
"""

from __future__ import annotations

import polars as pl

from ..frames import BAR_SCHEMA, TIME_BAR_EXTRAS
from .frame_checks import RUN_ROWS

PARTIAL_SCHEMA: dict[str, pl.DataType] = {
    "resolution": pl.String(),
    "symbol": pl.String(),
    "window": pl.Int64(),
    "window_end": pl.Int64(),
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
KEYS = ["resolution", "symbol", "window"]
_WINDOW_KEYS = ["symbol", "window"]
_EMPTY = pl.DataFrame(schema=PARTIAL_SCHEMA)
_NEW = "_new"  # suffix of the incoming side in ``combine``


def empty_partials() -> pl.DataFrame:
    """Return an empty partial frame."""
    return _EMPTY.clear()


def tick_partials(ticks: pl.DataFrame, resolution: str) -> pl.DataFrame:
    """Aggregate the ticks (``TICK_SCHEMA`` plus ``window``, ``window_end``) of one resolution."""
    runs = _run_partials(ticks, resolution)
    if runs is not None:
        return runs
    return _partials(
        ticks,
        resolution,
        False,
        pl.col("price").first().alias("open"),
        pl.col("price").max().alias("high"),
        pl.col("price").min().alias("low"),
        pl.col("price").last().alias("close"),
        pl.col("size").sum().alias("volume"),
        (pl.col("price") * pl.col("size")).sum().alias("pv"),
    )


def bar_partials(bars: pl.DataFrame, resolution: str) -> pl.DataFrame:
    """Aggregate input bars (``BAR_INPUT_SCHEMA`` plus ``window``, ``window_end``) into the
    partials of one resolution.

    A bar with zero volume carries no weight, so its missing vwap does not matter; a bar with
    volume but no vwap makes the window's vwap unknown, a bar without a trade count its count.
    """
    pv = pl.when(pl.col("volume") == 0).then(0.0).otherwise(pl.col("vwap") * pl.col("volume"))
    return _partials(
        bars.with_columns(pv.alias("pv")),
        resolution,
        True,
        pl.col("open").first(),
        pl.col("high").max(),
        pl.col("low").min(),
        pl.col("close").last(),
        pl.col("volume").sum(),
        pl.col("pv").sum(),
        pl.col("trades").sum(),
        pl.col("pv").null_count().alias("pv_nulls"),
        pl.col("trades").null_count().alias("trades_nulls"),
    )


def _partials(
    items: pl.DataFrame, resolution: str, nullable: bool, *values: pl.Expr
) -> pl.DataFrame:
    # One resolution at a time: a string key of one value made the group-by twice as slow.
    grouped = items.group_by(_WINDOW_KEYS).agg(
        pl.col("window_end").first(),
        pl.col("ts_ns").min().alias("open_ts"),
        pl.col("ts_ns").max().alias("close_ts"),
        pl.len().alias("items"),  # a cast in here would take polars' slow per-group path
        *values,
    )
    grouped = grouped.with_columns(
        pl.lit(resolution, pl.String).alias("resolution"), pl.col("items").cast(pl.Int64)
    )
    if not nullable:
        counted = {"trades": pl.col("items").alias("trades")}  # each tick is a trade
        return grouped.select(counted.get(name, pl.col(name)) for name in PARTIAL_SCHEMA)
    # Plain sum() skips nulls; a window with any unknown part must stay unknown.
    return grouped.select(
        *(
            pl.when(pl.col(f"{name}_nulls") > 0).then(None).otherwise(pl.col(name)).alias(name)
            if name in ("pv", "trades")
            else pl.col(name)
            for name in PARTIAL_SCHEMA
        )
    )


def _run_partials(ticks: pl.DataFrame, resolution: str) -> pl.DataFrame | None:
    """Aggregate long runs of rows of one (symbol, window) run by run, then group the runs;
    ``None`` when runs are short (ticks interleaved across symbols).

    A frame fetched from a log of per-symbol subjects comes in such runs: one message holds
    hundreds of one symbol's ticks. Grouping by run number (sorted, so polars takes slices)
    spares hashing every row's symbol, which cost more than the rest of the aggregation. Each
    window's ticks must come in event-time order (see the module docstring), so a run's first
    and last rows are its open and close. It is one polars query: in a worker thread beside a
    busy event loop, every call that lets go of Python's lock waits to get it back.
    """
    symbol, window = pl.col("symbol"), pl.col("window")
    change = symbol.ne_missing(symbol.shift(1)) | window.ne_missing(window.shift(1))
    # Counted apart and numbered again in the query: handing the query a run column computed
    # here made it twice as slow.
    runs = ticks.select(change.sum()).item()  # the first row starts a run too
    if ticks.height < 2 or RUN_ROWS * runs > ticks.height:
        return None
    price, ts = pl.col("price"), pl.col("ts_ns")
    query = (
        ticks.lazy()
        .with_columns(change.cum_sum().set_sorted().alias("_run"))
        .group_by("_run", maintain_order=True)
        .agg(
            pl.col("symbol", "window", "window_end").first(),
            ts.first().alias("open_ts"),
            ts.last().alias("close_ts"),
            price.first().alias("open"),
            price.last().alias("close"),
            price.max().alias("high"),
            price.min().alias("low"),
            pl.col("size").sum().alias("volume"),
            (price * pl.col("size")).sum().alias("pv"),
            pl.len().alias("items"),
        )
        # A window's runs interleave with other symbols' runs: group the runs (few rows).
        .group_by(_WINDOW_KEYS)
        .agg(
            pl.col("window_end", "open_ts", "open").first(),
            pl.col("close_ts", "close").last(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("volume", "pv", "items").sum(),
        )
    )
    derived = {"resolution": pl.lit(resolution), "trades": pl.col("items")}  # a tick, a trade
    return query.select(
        derived.get(name, pl.col(name)).cast(dtype).alias(name)
        for name, dtype in PARTIAL_SCHEMA.items()
    ).collect(engine="in-memory")


def combine(state: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """Fold ``new`` partials into ``state`` (both ``PARTIAL_SCHEMA``); ``state`` arrived first.

    Windows in only one side pass through as they are, windows in both are combined field by
    field (a full join on the keys). Nothing is re-aggregated. The rows come in no particular
    order.
    """
    if state.height == 0:
        return new
    if new.height == 0:
        return state
    if new.height > state.height:
        # A batch of a replay holds mostly windows the state never had (they open and close
        # within it): those pass through as they are, and only the few others are joined.
        known = new.select(
            pl.struct(KEYS).is_in(state.select(pl.struct(KEYS)).to_series().implode())
        )
        mask = known.to_series()
        if not mask.all():
            both = _joined(state, new.filter(mask)) if mask.any() else state
            return pl.concat([both, new.filter(~mask)], how="vertical")
    return _joined(state, new)


def _joined(state: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    joined = state.join(new, on=KEYS, how="full", coalesce=True, suffix=_NEW)
    return joined.select(
        "resolution",
        "symbol",
        "window",
        pl.coalesce("window_end", f"window_end{_NEW}").alias("window_end"),
        _pick("open", "open_ts", earlier=True),
        pl.min_horizontal("open_ts", f"open_ts{_NEW}").alias("open_ts"),
        pl.max_horizontal("high", f"high{_NEW}").alias("high"),
        pl.min_horizontal("low", f"low{_NEW}").alias("low"),
        _pick("close", "close_ts", earlier=False),
        pl.max_horizontal("close_ts", f"close_ts{_NEW}").alias("close_ts"),
        pl.sum_horizontal("volume", f"volume{_NEW}").alias("volume"),
        _add_or_null("pv"),
        _add_or_null("trades"),
        pl.sum_horizontal("items", f"items{_NEW}").cast(pl.Int64).alias("items"),
    )


def _only(side: str) -> pl.Expr:
    # ``items`` is never null in a partial, so a null marks the side the window is missing from.
    other = f"items{_NEW}" if side == "state" else "items"
    return pl.col(other).is_null()


def _pick(value: str, ts: str, *, earlier: bool) -> pl.Expr:
    """Take the state's value or the new one's by event time; ties go to the earlier arrival
    for ``open`` (``earlier``) and to the later one for ``close``."""
    old, new = pl.col(ts), pl.col(f"{ts}{_NEW}")
    keep_old = old <= new if earlier else old > new
    return (
        pl.when(_only("state"))
        .then(pl.col(value))
        .when(_only("new"))
        .then(pl.col(f"{value}{_NEW}"))
        .when(keep_old)
        .then(pl.col(value))
        .otherwise(pl.col(f"{value}{_NEW}"))
        .alias(value)
    )


def _add_or_null(name: str) -> pl.Expr:
    # A present side whose value is unknown makes the sum unknown; an absent side adds nothing.
    old, new = pl.col(name), pl.col(f"{name}{_NEW}")
    return (
        pl.when(_only("state"))
        .then(old)
        .when(_only("new"))
        .then(new)
        .otherwise(old + new)
        .alias(name)
    )


def finish(partials: pl.DataFrame) -> pl.DataFrame:
    """Turn partials into bars in ``BAR_SCHEMA``, in no particular order.

    Whoever needs an order sorts: the stores write in key order, ``api.bars`` and the readers
    sort by key. Sorting here as well cost a fifth of the engine's time at 10,000 symbols.
    """
    vwap = pl.when(pl.col("volume") > 0).then(pl.col("pv") / pl.col("volume")).otherwise(None)
    derived = {"ts_ns": pl.col("window"), "vwap": vwap.cast(pl.Float64), **TIME_BAR_EXTRAS}
    return partials.select(derived.get(name, pl.col(name)).alias(name) for name in BAR_SCHEMA)
