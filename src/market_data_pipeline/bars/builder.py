"""The bar engine: event-time tumbling windows with a per-symbol watermark and a grace period.

For each symbol, ``watermark = max event time seen - grace_ns``. A window ``[start, start + ns)``
closes, and its bar is emitted exactly once, when ``start + ns <= watermark``. A tick (or input
bar) is *late* when its window has already closed by the watermark of the items that arrived
before it; late items are counted per resolution and never change an emitted bar. The watermark
is per symbol on purpose: replaying one file per symbol must not make the later files late.

Open is the price at the earliest event time (ties: first arrival) and close the price at the
latest (ties: last arrival), so a bar does not depend on arrival order within the grace.

Reconciliation, per resolution, at every moment::

    ticks_in == ticks_in_bars + ticks_late + open_ticks

Small frames that cannot close any window are held and folded in together with the next frame
that can: the result is identical (the late rule depends only on arrival order) and a stream of
small frames costs about what one large frame does. ``flush()`` ends the stream: it emits every
open window; feeding the engine afterwards raises ``UsageError`` (a flushed window could
otherwise be emitted twice).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl

from ..errors import UsageError
from ..frames import BAR_INPUT_SCHEMA, TICK_SCHEMA
from .aggregate import bar_items, empty_partials, finish, merge_partials, tick_partials
from .frame_checks import conform, empty_bar_frame, late_possible
from .resolution import Resolution

DEFAULT_MAX_HELD_ROWS = 262_144
_Kind = Literal["ticks", "bars"]
_REQUIRED_BAR_FIELDS = ("symbol", "ts_ns", "open", "high", "low", "close", "volume")


@dataclass(frozen=True, slots=True)
class ResolutionStats:
    """Counters of one resolution; ``ticks_in == ticks_in_bars + ticks_late + open_ticks``.

    For bar input, every input bar counts as one tick.
    """

    ticks_in: int
    ticks_late: int
    ticks_in_bars: int
    bars_emitted: int
    open_windows: int
    open_ticks: int


@dataclass(slots=True)
class _Counters:
    ticks_in: int = 0
    ticks_late: int = 0
    ticks_in_bars: int = 0
    bars_emitted: int = 0


class BarEngine:
    """Build OHLCV bars for several resolutions from tick frames or finer-grained bar frames."""

    def __init__(
        self,
        resolutions: Sequence[Resolution],
        grace_ns: int,
        *,
        max_held_rows: int = DEFAULT_MAX_HELD_ROWS,
    ) -> None:
        labels = [res.label for res in resolutions]
        if not labels:
            raise UsageError("the bar engine needs at least one resolution")
        if len(set(labels)) != len(labels):
            raise UsageError(f"duplicate resolution in {labels}")
        if grace_ns < 0:
            raise UsageError(f"grace must not be negative, got {grace_ns} ns")
        self.resolutions = list(resolutions)
        self.grace_ns = grace_ns
        self.max_held_rows = max_held_rows
        self._coarsest = max(self.resolutions, key=lambda res: res.ns).label
        self._state = {res.label: empty_partials() for res in self.resolutions}
        self._counters = {res.label: _Counters() for res in self.resolutions}
        self._held: list[pl.DataFrame] = []
        self._held_kind: _Kind = "ticks"
        self._held_rows = 0
        self._max_ts: int | None = None  # over all symbols, held frames included
        self._next_end: int | None = None  # earliest end of any open or held window
        self._carry: list[pl.DataFrame] = []
        self._flushed = False

    def add_ticks(self, ticks: pl.DataFrame) -> pl.DataFrame:
        """Fold a tick frame (``TICK_SCHEMA``) in; return the bars it closed (``BAR_SCHEMA``)."""
        return self._add(conform(ticks, TICK_SCHEMA, tuple(TICK_SCHEMA), what="tick"), "ticks")

    def add_bars(self, bars: pl.DataFrame) -> pl.DataFrame:
        """Resample an input bar frame (``BAR_INPUT_SCHEMA``, ts_ns = bar start) into coarser bars.

        Each input bar is one item at its ``ts_ns`` (the watermark advances with bar starts).
        Output ``vwap`` is null when the volume is 0 or when an input bar with volume has a null
        vwap; output ``trades`` is null when any input bar's is null.
        """
        frame = conform(bars, BAR_INPUT_SCHEMA, _REQUIRED_BAR_FIELDS, what="bar")
        return self._add(frame, "bars")

    def flush(self) -> pl.DataFrame:
        """Emit every open window of every resolution and end the stream."""
        out = [*self._carry, self._drain()]
        self._carry = []
        self._flushed = True
        for res in self.resolutions:
            state = self._state[res.label]
            self._state[res.label] = empty_partials()
            out.append(self._emit(res, state))
        self._next_end = None
        return _concat_bars(out)

    def stats(self) -> dict[str, ResolutionStats]:
        """Return the counters of every resolution, keyed by label."""
        # Held frames close nothing by construction; folding them in settles their late counts.
        self._carry.append(self._drain())
        result = {}
        for label, c in self._counters.items():
            state = self._state[label]
            open_ticks = int(state["items"].sum()) if state.height else 0
            result[label] = ResolutionStats(
                c.ticks_in, c.ticks_late, c.ticks_in_bars, c.bars_emitted, state.height, open_ticks
            )
        return result

    def _add(self, frame: pl.DataFrame, kind: _Kind) -> pl.DataFrame:
        if self._flushed:
            raise UsageError("the bar engine was flushed; start a new one for more data")
        out, self._carry = self._carry, []
        if frame.height == 0:
            return _concat_bars(out)
        if kind != self._held_kind:
            out.append(self._drain())
            self._held_kind = kind
        self._hold(frame)
        if self._may_close() or self._held_rows >= self.max_held_rows:
            out.append(self._drain())
        return _concat_bars(out)

    def _hold(self, frame: pl.DataFrame) -> None:
        ts = frame.get_column("ts_ns")
        low, high = _int(ts.min()), _int(ts.max())
        self._held.append(frame)
        self._held_rows += frame.height
        self._max_ts = high if self._max_ts is None else max(self._max_ts, high)
        end = min(res.window_start(low) + res.ns for res in self.resolutions)
        self._next_end = end if self._next_end is None else min(self._next_end, end)

    def _may_close(self) -> bool:
        # Global max over all symbols >= any symbol's max, so this never misses a closing window.
        assert self._max_ts is not None and self._next_end is not None
        return self._next_end <= self._max_ts - self.grace_ns

    def _drain(self) -> pl.DataFrame:
        if not self._held:
            return empty_bar_frame()
        frame = pl.concat(self._held, how="vertical") if len(self._held) > 1 else self._held[0]
        self._held, self._held_rows = [], 0
        if self._held_kind == "ticks":
            return self._ingest(frame, _merge_ticks)
        return self._ingest(frame, _merge_bars)

    def _ingest(
        self, frame: pl.DataFrame, merge: Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame]
    ) -> pl.DataFrame:
        limit = self._late_limit(frame)
        out = []
        for res in self.resolutions:
            kept = self._drop_late(res, frame, limit)
            # The state goes first so that event-time ties resolve to the earlier arrival.
            out.append(self._close(res, merge(kept, self._state[res.label])))
        ends = [
            _int(state["window"].min()) + res.ns
            for res in self.resolutions
            if (state := self._state[res.label]).height
        ]
        self._next_end = min(ends) if ends else None
        return _concat_bars(out)

    def _late_limit(self, frame: pl.DataFrame) -> pl.Expr | None:
        """Return ``prior max ts of the symbol - grace`` per row, or None if no row can be late."""
        state = self._state[self._coarsest]
        state_max = _int(state["close_ts"].max()) if state.height else None
        if not late_possible(frame.get_column("ts_ns"), state_max, self.grace_ns):
            return None
        # Every symbol's latest item sits in an open window of every resolution.
        marks = state.group_by("symbol").agg(pl.col("close_ts").max())
        known = pl.col("symbol").replace_strict(
            marks["symbol"], marks["close_ts"], default=None, return_dtype=pl.Int64
        )
        prior = pl.max_horizontal(pl.col("ts_ns").cum_max().shift(1).over("symbol"), known)
        return prior - self.grace_ns

    def _drop_late(
        self, res: Resolution, frame: pl.DataFrame, limit: pl.Expr | None
    ) -> pl.DataFrame:
        window = pl.col("ts_ns") - pl.col("ts_ns") % res.ns
        counters = self._counters[res.label]
        counters.ticks_in += frame.height
        if limit is None:
            return frame.with_columns(window.alias("window"))
        on_time = ~(window + res.ns <= limit).fill_null(False)
        kept = frame.filter(on_time).with_columns(window.alias("window"))
        counters.ticks_late += frame.height - kept.height
        return kept

    def _close(self, res: Resolution, merged: pl.DataFrame) -> pl.DataFrame:
        # The window holding a symbol's latest item never closes, so the merged state knows
        # every symbol's max event time.
        mark = pl.col("close_ts").max().over("symbol") - self.grace_ns
        closes = merged.select(pl.col("window") + res.ns <= mark).to_series()
        if not closes.any():
            self._state[res.label] = merged
            return empty_bar_frame()
        self._state[res.label] = merged.filter(~closes)
        return self._emit(res, merged.filter(closes))

    def _emit(self, res: Resolution, closed: pl.DataFrame) -> pl.DataFrame:
        if closed.height == 0:
            return empty_bar_frame()
        counters = self._counters[res.label]
        counters.bars_emitted += closed.height
        counters.ticks_in_bars += int(closed["items"].sum())
        return finish(closed, res.label)


def _int(value: object) -> int:
    assert isinstance(value, int)  # min/max of a non-empty Int64 column
    return value


def _merge_ticks(kept: pl.DataFrame, state: pl.DataFrame) -> pl.DataFrame:
    partials = tick_partials(kept)
    return merge_partials([state, partials]) if state.height else partials


def _merge_bars(kept: pl.DataFrame, state: pl.DataFrame) -> pl.DataFrame:
    return merge_partials([state, bar_items(kept)])


def _concat_bars(frames: list[pl.DataFrame]) -> pl.DataFrame:
    frames = [frame for frame in frames if frame.height]
    if not frames:
        return empty_bar_frame()
    return pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
