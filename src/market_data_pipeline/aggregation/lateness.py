"""Allowed lateness: closed windows kept for late ticks, revised bars, late items kept aside.

The bar engine (``builder.BarEngine``) calls these only when it runs with an allowed lateness
or keeps late items; a run without either never reaches this module.

A *retained* window is a closed window's partial row (``aggregate.PARTIAL_SCHEMA``) plus
``revising``: how many of its items came after it had closed. A window is retained until its
symbol's watermark passes ``window_end + allowed lateness`` (``expire``). Revising items are
aggregated into partials of their own and combined into their window as if they had come in
time (``revise``): they arrived after every in-time item of that window, so ties in event time
go to them as for any later arrival.

A bar's ``revision`` is the number of times it would have been written before, had the items
come one at a time: 0 for a window whose bar holds no revising item, and one more for each
revising item, less one when the window holds nothing else (its first revising item made it).
It depends on the arrival order only, not on how the stream was cut into frames, so a run that
was checkpointed and restarted ends with the same revisions as one that was not. A bar written
again always carries a higher revision than before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from .aggregate import KEYS, PARTIAL_SCHEMA, combine, finish

REVISING = "revising"
REVISION = "revision"
RETAINED_SCHEMA: dict[str, pl.DataType] = {**PARTIAL_SCHEMA, REVISING: pl.Int64()}
# What a late item keeps besides its own columns: why, the resolutions whose window it missed,
# the coarsest such window (start, end) and the watermark it met (event time, ns).
LATE_COLUMNS: dict[str, pl.DataType] = {
    "reason": pl.String(),
    "resolutions": pl.String(),
    "window": pl.Int64(),
    "window_end": pl.Int64(),
    "watermark_ns": pl.Int64(),
}
LATE_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "ts_ns": pl.Int64(),
    "price": pl.Float64(),
    "size": pl.Float64(),
    **LATE_COLUMNS,
}
_ITEM_EXTRA = ("window", "window_end", "limit", "origin")  # engine columns, not the item's own
_PRIOR_ITEMS = "_prior_items"
_PRIOR_REVISING = "_prior_revising"
_ADDED = "_added"


def empty_retained() -> pl.DataFrame:
    """Return an empty retained-window frame (``RETAINED_SCHEMA``)."""
    return pl.DataFrame(schema=RETAINED_SCHEMA)


@dataclass(frozen=True, slots=True)
class Counts:
    """What one resolution's bars of a frame were: bars, ticks newly in bars, rewrites, revised."""

    bars: int
    ticks: int
    rewritten: int
    revised: int


@dataclass(frozen=True, slots=True)
class Revised:
    """The bars a frame closed or revised (``BAR_SCHEMA`` + ``revision``), the retained windows
    after it (before expiry), and per resolution what the bars were (``counts``)."""

    bars: pl.DataFrame
    retained: pl.DataFrame
    emitted: pl.DataFrame  # the emitted windows, with _prior_items and _prior_revising

    def counts(self) -> dict[str, Counts]:
        """Return per resolution label the bars, new ticks, rewrites and newly revised bars."""
        if self.emitted.height == 0:
            return {}
        prior_items = pl.col(_PRIOR_ITEMS)
        grouped = self.emitted.group_by("resolution").agg(
            pl.len().alias("bars"),
            (pl.col("items") - prior_items.fill_null(0)).sum().alias("ticks"),
            prior_items.is_not_null().sum().alias("rewritten"),
            ((pl.col(REVISING) > 0) & (pl.col(_PRIOR_REVISING) == 0)).sum().alias("revised"),
        )
        return {
            str(label): Counts(int(bars), int(ticks), int(rewritten), int(revised))
            for label, bars, ticks, rewritten, revised in grouped.iter_rows()
        }


def revise(closed: pl.DataFrame, retained: pl.DataFrame, rev: pl.DataFrame | None) -> Revised:
    """Combine the revising partials ``rev`` into the windows closing now (``closed``) and the
    retained ones; return the bars to write and the retained windows that follow.

    ``closed`` are partials of windows closing now for the first time; no retained window is
    among them (a retained window is closed, so no in-time item can reach it).
    """
    first = closed.with_columns(pl.lit(0, pl.Int64).alias(REVISING))
    if rev is None or rev.height == 0:
        emitted = first.with_columns(
            pl.lit(None, pl.Int64).alias(_PRIOR_ITEMS), pl.lit(0, pl.Int64).alias(_PRIOR_REVISING)
        )
        return Revised(_bars(first), _concat([retained, first]), emitted)
    keys = rev.select(KEYS)
    again = retained.join(keys, on=KEYS, how="semi")
    kept = retained.join(keys, on=KEYS, how="anti") if again.height else retained
    base = _concat([first, again])
    merged = combine(base.drop(REVISING), rev)
    prior = again.select(*KEYS, pl.col("items").alias(_PRIOR_ITEMS))
    before = base.select(*KEYS, pl.col(REVISING).alias(_PRIOR_REVISING))
    added = rev.select(*KEYS, pl.col("items").alias(_ADDED))
    emitted = (
        merged.join(prior, on=KEYS, how="left")
        .join(before, on=KEYS, how="left")
        .join(added, on=KEYS, how="left")
        .with_columns(pl.col(_PRIOR_REVISING).fill_null(0), pl.col(_ADDED).fill_null(0))
        .with_columns((pl.col(_PRIOR_REVISING) + pl.col(_ADDED)).alias(REVISING))
        .drop(_ADDED)
    )
    windows = emitted.select(list(RETAINED_SCHEMA))
    return Revised(_bars(windows), _concat([kept, windows]), emitted)


def expire(retained: pl.DataFrame, marks: pl.DataFrame, horizon_ns: int) -> pl.DataFrame:
    """Drop the retained windows whose symbol's max event time (``marks``: symbol, max_ts_ns,
    the symbols whose watermark moved) reached ``window_end + horizon_ns`` (grace + lateness).
    """
    if retained.height == 0:
        return retained
    high = retained.select("symbol").join(marks, on="symbol", how="left", maintain_order="left")
    alive = (
        retained.get_column("window_end") + horizon_ns > high.get_column("max_ts_ns")
    ).fill_null(True)
    if alive.all():
        return retained
    return retained.filter(alive)


def late_rows(
    blocks: dict[str, pl.DataFrame], coarse_first: Sequence[tuple[str, pl.Series]], reason: str
) -> pl.DataFrame:
    """Return the items late in at least one resolution, once each, with ``LATE_COLUMNS``.

    ``blocks`` holds per resolution label the same items with that resolution's ``window`` and
    ``window_end`` (and ``limit``); ``coarse_first`` the too-late mask of each resolution that
    has one, coarsest first. The window kept is the coarsest one missed.
    """
    labels = [label for label, _ in coarse_first]
    base = blocks[labels[0]]
    own = [name for name in base.columns if name not in _ITEM_EXTRA]
    columns: dict[str, pl.Series] = {name: base.get_column(name) for name in own}
    columns["_limit"] = base.get_column("limit")
    for i, (label, mask) in enumerate(coarse_first):
        columns[f"_m{i}"] = mask
        columns[f"_w{i}"] = blocks[label].get_column("window")
        columns[f"_e{i}"] = blocks[label].get_column("window_end")
    flags = [pl.col(f"_m{i}") for i in range(len(labels))]
    frame = pl.DataFrame({name: series.alias(name) for name, series in columns.items()})
    frame = frame.filter(pl.any_horizontal(flags))
    if frame.height == 0:
        return frame.select(own)
    fine_first = reversed(range(len(labels)))
    missed = pl.concat_str(
        [pl.when(flags[i]).then(pl.lit(labels[i])) for i in fine_first],
        separator=",",
        ignore_nulls=True,
    )
    window = pl.coalesce([pl.when(flags[i]).then(pl.col(f"_w{i}")) for i in range(len(labels))])
    end = pl.coalesce([pl.when(flags[i]).then(pl.col(f"_e{i}")) for i in range(len(labels))])
    return frame.select(
        *own,
        pl.lit(reason).alias("reason"),
        missed.alias("resolutions"),
        window.alias("window"),
        end.alias("window_end"),
        pl.col("_limit").alias("watermark_ns"),
    )


def _bars(windows: pl.DataFrame) -> pl.DataFrame:
    revising = pl.col(REVISING)
    revision = revising - (revising == pl.col("items")).cast(pl.Int64)
    return finish(windows).with_columns(windows.select(revision.alias(REVISION)).to_series())


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    frames = [frame for frame in frames if frame.height]
    if not frames:
        return empty_retained()
    out = pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
    return out.rechunk() if out.n_chunks() > 16 else out
