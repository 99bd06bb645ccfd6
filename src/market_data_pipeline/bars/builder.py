"""The bar engine: event-time tumbling windows with a per-symbol watermark and a grace period.

For each symbol, ``watermark = max event time seen - grace_ns``. A window ``[start, end)``
closes, and its bar is emitted exactly once, when ``end <= watermark``. A tick (or input bar)
is *late* when its window has already closed by the watermark of the items that arrived before
it; late items are counted per resolution and never change an emitted bar. The watermark is per
symbol on purpose: replaying one file per symbol must not make the later files late. Window
starts and ends come from ``windows.window_bounds`` and nowhere else.

Open is the price at the earliest event time (ties: first arrival) and close the price at the
latest (ties: last arrival), so a bar does not depend on arrival order within the grace.

Open state is one frame with a partial row per (resolution, symbol, window), plus one watermark
row per symbol. A batch whose ticks are in event-time order per symbol (a live feed, or a log
fetch of interleaved per-symbol subjects) needs no sort, and its ticks can be late only against
the watermarks before it, not against one another: a join, or nothing when every symbol's
first tick is at or above its watermark - grace (``frame_checks.symbol_spans`` tells, in the
group-by that advances the watermarks). Any other batch gets a running max per symbol and row
and is sorted by event time once (stable). The batch gets each resolution's windows and is
aggregated into partials, one group-by per resolution; then it touches only the state rows of
the symbols in it: those are combined with the new partials (a join, not a re-aggregation)
and are the only rows that can close, because only their watermarks moved. The rest of the
state is carried over as it is. Every step is a handful of whole-frame polars calls, however
many symbols there are.

Reconciliation, per resolution, at every moment::

    ticks_in == ticks_in_bars + ticks_late + ticks_outside + open_ticks

``ticks_outside`` counts the items that fall outside every trading session when the windows
(``windows=``, keyed by resolution label) follow a calendar; they take part in nothing else,
not even the watermark.

Small frames that cannot close any window are held and folded in together with the next frame
that can: the result is identical (the late rule depends only on arrival order) and a stream of
small frames costs about what one large frame does. Folding in touches the state (a few
whole-frame calls over every open window), so a frame that may close a window is also held
while the held rows are fewer than the open windows (``/ DRAIN_SHARE``), for at most
``max_hold_s`` of wall time: with thousands of symbols some window is always waiting for its
symbol's next tick, and folding in every metered slice of a throttled source would cost
O(symbols) per slice. Bars then come at most ``max_hold_s`` later (counted from a frame's
arrival, checked when the next frame arrives, so only for sources whose frames keep coming);
what they hold does not change. The default ``max_hold_s=0`` folds such frames in at once.
``flush()`` ends the stream: it emits every open window; feeding the engine afterwards raises
``UsageError`` (a flushed window could otherwise be emitted twice).

A frame may carry an ``origin`` column (e.g. the file a replayed row came from);
``late_by_origin()`` then counts the late ticks of the finest resolution by origin.

``open_state()`` and ``watermarks()`` give the engine's state as frames; ``BarEngine.restore``
builds an engine from them that goes on exactly as the original would have.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import polars as pl

from ..errors import BadInputError, UsageError
from ..frames import BAR_INPUT_SCHEMA, TICK_SCHEMA, conform, empty_bars
from .aggregate import PARTIAL_SCHEMA, bar_partials, combine, empty_partials, finish, tick_partials
from .calendars import Windows
from .frame_checks import late_possible, symbol_spans
from .resolution import Resolution
from .windows import window_bounds, window_end_of

DEFAULT_MAX_HELD_ROWS = 262_144
_MAX_CHUNKS = 16  # the state grows by appending; rechunk before filters get slow
DRAIN_SHARE = 1  # fold held rows in once as many as the open windows (amortised O(1) a row)
DEFAULT_MAX_HOLD_S = 0.25  # or once the oldest held frame waited this long (bar latency)
_Kind = Literal["ticks", "bars"]
_REQUIRED_BAR_FIELDS = ("symbol", "ts_ns", "open", "high", "low", "close", "volume")

OPEN_STATE_SCHEMA = PARTIAL_SCHEMA
WATERMARK_SCHEMA: dict[str, pl.DataType] = {"symbol": pl.String(), "max_ts_ns": pl.Int64()}
ORIGIN = "origin"
_BEFORE = "_before"  # suffix of the watermarks before a frame, next to its spans


@dataclass(frozen=True, slots=True)
class ResolutionStats:
    """Counters of one resolution; ``ticks_in == in_bars + late + outside + open_ticks``.

    For bar input, every input bar counts as one tick.
    """

    ticks_in: int
    ticks_late: int
    ticks_in_bars: int
    bars_emitted: int
    open_windows: int
    open_ticks: int
    ticks_outside: int = 0


@dataclass(slots=True)
class _Counters:
    ticks_in: int = 0
    ticks_late: int = 0
    ticks_in_bars: int = 0
    bars_emitted: int = 0
    ticks_outside: int = 0


class BarEngine:
    """Build OHLCV bars for several resolutions from tick frames or finer-grained bar frames."""

    def __init__(
        self,
        resolutions: Sequence[Resolution],
        grace_ns: int,
        *,
        max_held_rows: int = DEFAULT_MAX_HELD_ROWS,
        windows: Mapping[str, Windows] | None = None,
        max_hold_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
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
        self.max_hold_s = max_hold_s
        self._clock = clock
        self._held_since = 0.0  # clock() when the oldest held frame arrived
        self._windows = dict(windows or {})
        self._sessions = next((w for w in self._windows.values() if w.sessions), None)
        self._state = empty_partials()  # open windows of every resolution
        self._marks = pl.DataFrame(schema=WATERMARK_SCHEMA)  # max event time per symbol
        self._marks_max: int | None = None  # over all symbols, held frames excluded
        self._counters = {res.label: _Counters() for res in self.resolutions}
        self._finest = min(self.resolutions, key=lambda res: res.ns).label
        self._late_by_origin: dict[int, int] = {}
        self._held: list[pl.DataFrame] = []
        self._held_kind: _Kind = "ticks"
        self._held_rows = 0
        self._max_ts: int | None = None  # over all symbols, held frames included
        self._next_end: int | None = None  # earliest end of any open or held window
        self._carry: list[pl.DataFrame] = []
        self._flushed = False

    @classmethod
    def restore(
        cls,
        resolutions: Sequence[Resolution],
        grace_ns: int,
        open_state: pl.DataFrame,
        watermarks: pl.DataFrame,
        *,
        max_held_rows: int = DEFAULT_MAX_HELD_ROWS,
        windows: Mapping[str, Windows] | None = None,
    ) -> BarEngine:
        """Build an engine that continues from ``open_state()`` and ``watermarks()`` of another.

        The restored open ticks count as ticks in of the new engine, so its reconciliation
        holds from the start; ticks already in emitted bars or late belong to the old run.
        """
        engine = cls(resolutions, grace_ns, max_held_rows=max_held_rows, windows=windows)
        engine._load(open_state, watermarks)
        return engine

    def add_ticks(self, ticks: pl.DataFrame) -> pl.DataFrame:
        """Fold a tick frame (``TICK_SCHEMA``) in; return the bars it closed (``BAR_SCHEMA``)."""
        frame = conform(ticks, TICK_SCHEMA, tuple(TICK_SCHEMA), what="tick")
        return self._add(_keep_origin(frame, ticks), "ticks")

    def add_bars(self, bars: pl.DataFrame) -> pl.DataFrame:
        """Resample an input bar frame (``BAR_INPUT_SCHEMA``, ts_ns = bar start) into coarser bars.

        Each input bar is one item at its ``ts_ns`` (the watermark advances with bar starts).
        Output ``vwap`` is null when the volume is 0 or when an input bar with volume has a null
        vwap; output ``trades`` is null when any input bar's is null.
        """
        frame = conform(bars, BAR_INPUT_SCHEMA, _REQUIRED_BAR_FIELDS, what="bar")
        return self._add(_keep_origin(frame, bars), "bars")

    def flush(self) -> pl.DataFrame:
        """Emit every open window of every resolution and end the stream."""
        out = [*self._carry, self._drain()]
        self._carry = []
        self._flushed = True
        out.append(self._emit(self._state))
        self._state = empty_partials()
        self._next_end = None
        return _concat_bars(out)

    def stats(self) -> dict[str, ResolutionStats]:
        """Return the counters of every resolution, keyed by label."""
        self._settle()
        windows, ticks = _per_resolution(self._state)
        return {
            label: ResolutionStats(
                c.ticks_in,
                c.ticks_late,
                c.ticks_in_bars,
                c.bars_emitted,
                windows.get(label, 0),
                ticks.get(label, 0),
                c.ticks_outside,
            )
            for label, c in self._counters.items()
        }

    def late_by_origin(self) -> dict[int, int]:
        """Return the ticks late in the finest resolution per ``origin`` value of their frames."""
        self._settle()
        return dict(self._late_by_origin)

    def open_state(self) -> pl.DataFrame:
        """Return every open window as a partial row (``OPEN_STATE_SCHEMA``), for a checkpoint.

        Bars already returned by ``add_*`` are not in it; a frame still held is folded in first.
        A checkpoint of returned bars plus this state is exact only while held frames close
        nothing, i.e. with ``max_hold_s=0``: otherwise this raises ``UsageError`` when a held
        frame closed windows whose bars the next ``add_*`` would return.
        """
        self._settle_for_snapshot()
        return self._state.rechunk()

    def watermarks(self) -> pl.DataFrame:
        """Return the max event time seen per symbol (``WATERMARK_SCHEMA``), for a checkpoint."""
        self._settle_for_snapshot()
        return self._marks.rechunk()

    def _settle(self) -> None:
        # Folding held frames in settles their late counts; bars they close (only possible with
        # max_hold_s > 0) wait in the carry for the next add_* or flush.
        self._carry.append(self._drain())

    def _settle_for_snapshot(self) -> None:
        self._settle()
        if any(frame.height for frame in self._carry):
            raise UsageError(
                "held frames closed windows whose bars were not returned yet: a snapshot now "
                "would miss them (checkpointing engines take max_hold_s=0)"
            )

    def _load(self, open_state: pl.DataFrame, watermarks: pl.DataFrame) -> None:
        if dict(open_state.schema) != OPEN_STATE_SCHEMA:
            raise BadInputError(f"open state must have the columns {list(OPEN_STATE_SCHEMA)}")
        if dict(watermarks.schema) != WATERMARK_SCHEMA:
            raise BadInputError(f"watermarks must have the columns {list(WATERMARK_SCHEMA)}")
        unknown = set(open_state["resolution"].unique()) - set(self._counters)
        if unknown:
            raise BadInputError(f"open state has resolutions {sorted(unknown)} not built here")
        if watermarks["symbol"].is_duplicated().any():
            raise BadInputError("watermarks name a symbol twice")
        unmarked = open_state.join(watermarks, on="symbol", how="anti")
        if unmarked.height:
            raise BadInputError(f"no watermark for symbol {unmarked['symbol'][0]!r}")
        self._state, self._marks = open_state, watermarks
        self._marks_max = _int(watermarks["max_ts_ns"].max()) if watermarks.height else None
        for label, ticks in _per_resolution(open_state)[1].items():
            self._counters[label].ticks_in = ticks
        self._next_end = self._earliest_open_end()

    def _add(self, frame: pl.DataFrame, kind: _Kind) -> pl.DataFrame:
        if self._flushed:
            raise UsageError("the bar engine was flushed; start a new one for more data")
        out, self._carry = self._carry, []
        frame = self._drop_outside(frame)
        if frame.height == 0:
            return _concat_bars(out)
        if kind != self._held_kind:
            out.append(self._drain())
            self._held_kind = kind
        self._hold(frame)
        if self._held_rows >= self.max_held_rows or (self._may_close() and self._drain_pays()):
            out.append(self._drain())
        return _concat_bars(out)

    def _drop_outside(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Count and drop the items outside every trading session (with a calendar)."""
        if self._sessions is None or frame.height == 0:
            return frame
        inside = self._sessions.inside(frame.get_column("ts_ns"))
        if inside is None or inside.all():
            return frame
        outside = frame.height - int(inside.sum())
        for counters in self._counters.values():
            counters.ticks_in += outside
            counters.ticks_outside += outside
        return frame.filter(inside)

    def _hold(self, frame: pl.DataFrame) -> None:
        if not self._held:
            self._held_since = self._clock()
        ts = frame.get_column("ts_ns")
        low, high = _int(ts.min()), _int(ts.max())
        self._held.append(frame)
        self._held_rows += frame.height
        self._max_ts = high if self._max_ts is None else max(self._max_ts, high)
        end = min(window_end_of(res, low, self._windows.get(res.label)) for res in self.resolutions)
        self._next_end = end if self._next_end is None else min(self._next_end, end)

    def _may_close(self) -> bool:
        # Global max over all symbols >= any symbol's max, so this never misses a closing window.
        assert self._max_ts is not None and self._next_end is not None
        return self._next_end <= self._max_ts - self.grace_ns

    def _drain_pays(self) -> bool:
        """True when folding in now costs little per held row, or the held rows waited enough."""
        if self._held_rows * DRAIN_SHARE >= self._state.height:
            return True
        return self._clock() - self._held_since >= self.max_hold_s

    def _drain(self) -> pl.DataFrame:
        if not self._held:
            return empty_bars()
        frame = pl.concat(self._held, how="diagonal") if len(self._held) > 1 else self._held[0]
        self._held, self._held_rows = [], 0
        partials = tick_partials if self._held_kind == "ticks" else bar_partials
        return self._ingest(frame, partials)

    def _ingest(
        self, frame: pl.DataFrame, partials: Callable[[pl.DataFrame, str], pl.DataFrame]
    ) -> pl.DataFrame:
        spans, in_order = symbol_spans(frame)
        symbols = spans.get_column("symbol")
        touched, rest = _split(self._marks, symbols)
        spans = spans.join(touched, on="symbol", how="left", suffix=_BEFORE)
        frame = self._with_late_limit(frame, spans, in_order=in_order)
        marks = self._advance_marks(spans, rest)
        if not in_order:
            # Stable: ties keep arrival order, which decides open and close (see aggregate).
            # In order per symbol, the frame already lists every window's items so: its rows
            # are a subset of one symbol's, which this sort would leave in their order.
            frame = frame.sort("ts_ns", maintain_order=True)
        blocks = self._stack(frame)
        new = [partials(self._drop_late(label, items), label) for label, items in blocks]
        closed = self._fold(pl.concat(new) if len(new) > 1 else new[0], symbols, marks)
        self._next_end = self._earliest_open_end()
        return self._emit(closed)

    def _with_late_limit(
        self, frame: pl.DataFrame, spans: pl.DataFrame, *, in_order: bool
    ) -> pl.DataFrame:
        """Add ``limit`` (prior max ts of the symbol - grace) per row when any row can be late.

        ``spans`` has the min and max ts per symbol of ``frame`` and the watermark before it.
        """
        if in_order:
            # An item at or above every earlier item of its symbol lies in a window ending
            # above their max - grace: only the watermark of earlier frames can make it late,
            # and only when the symbol's first item lies below it - grace.
            before = spans.get_column(f"max_ts_ns{_BEFORE}")
            if not (spans.get_column("min_ts_ns") < before - self.grace_ns).any():
                return frame
            known = frame.select("symbol").join(
                self._marks, on="symbol", how="left", maintain_order="left"
            )
            return frame.with_columns(
                (known.get_column("max_ts_ns") - self.grace_ns).alias("limit")
            )
        if not late_possible(frame.get_column("ts_ns"), self._marks_max, self.grace_ns):
            return frame
        known = frame.select("symbol").join(
            self._marks, on="symbol", how="left", maintain_order="left"
        )
        running = frame.select(pl.col("ts_ns").cum_max().shift(1).over("symbol")).to_series()
        prior = pl.max_horizontal(running, known.get_column("max_ts_ns"))
        return frame.with_columns((prior - self.grace_ns).alias("limit"))

    def _stack(self, frame: pl.DataFrame) -> list[tuple[str, pl.DataFrame]]:
        """Return, per resolution label, ``frame`` with that resolution's window of each row."""
        ts = frame.get_column("ts_ns")
        blocks = []
        for res in self.resolutions:
            start, end = window_bounds(res, ts, self._windows.get(res.label))
            blocks.append((res.label, frame.with_columns(start, end)))
        return blocks

    def _advance_marks(self, spans: pl.DataFrame, rest: pl.DataFrame) -> pl.DataFrame:
        """Raise the watermarks of the symbols in ``spans``; return theirs (symbol, max_ts_ns).

        ``rest`` holds the watermarks of the other symbols, carried over as they are.
        """
        seen = spans.select(
            "symbol", pl.max_horizontal("max_ts_ns", f"max_ts_ns{_BEFORE}").alias("max_ts_ns")
        )
        self._marks = _append(rest, seen)
        high = _int(spans["max_ts_ns"].max())
        self._marks_max = high if self._marks_max is None else max(self._marks_max, high)
        return seen

    def _drop_late(self, label: str, items: pl.DataFrame) -> pl.DataFrame:
        """Count ``items`` in for resolution ``label`` and drop (counting) its late ones."""
        counters = self._counters[label]
        counters.ticks_in += items.height
        if "limit" not in items.columns:
            return items
        late = (items.get_column("window_end") <= items.get_column("limit")).fill_null(False)
        if not late.any():
            return items.drop("limit")
        counters.ticks_late += int(late.sum())
        if ORIGIN in items.columns and label == self._finest:
            origins = items.get_column(ORIGIN).filter(late).drop_nulls()
            for origin, count in origins.value_counts().rows():
                self._late_by_origin[origin] = self._late_by_origin.get(origin, 0) + count
        return items.filter(~late).drop("limit")

    def _fold(self, new: pl.DataFrame, symbols: pl.Series, marks: pl.DataFrame) -> pl.DataFrame:
        """Combine ``new`` partials into the state; return the windows that closed."""
        # Only the windows of symbols in this batch can change or close: the others' watermarks
        # did not move, and they closed what they could the last time they did.
        touched, rest = _split(self._state, symbols)
        merged = combine(touched, new)
        limit = merged.select("symbol").join(marks, on="symbol", how="left", maintain_order="left")
        closes = merged.get_column("window_end") <= limit.get_column("max_ts_ns") - self.grace_ns
        if not closes.any():
            self._state = _append(rest, merged)
            return merged.clear()
        self._state = _append(rest, merged.filter(~closes))
        return merged.filter(closes)

    def _emit(self, closed: pl.DataFrame) -> pl.DataFrame:
        if closed.height == 0:
            return empty_bars()
        windows, ticks = _per_resolution(closed)
        for label, count in windows.items():
            self._counters[label].bars_emitted += count
            self._counters[label].ticks_in_bars += ticks[label]
        return finish(closed)

    def _earliest_open_end(self) -> int | None:
        return _int(self._state["window_end"].min()) if self._state.height else None


def _keep_origin(frame: pl.DataFrame, given: pl.DataFrame) -> pl.DataFrame:
    if ORIGIN not in given.columns:
        return frame
    return frame.with_columns(given.get_column(ORIGIN))


def _per_resolution(partials: pl.DataFrame) -> tuple[dict[str, int], dict[str, int]]:
    """Return windows and ticks per resolution label of a partial frame."""
    if partials.height == 0:
        return {}, {}
    counts = partials.group_by("resolution").agg(pl.len(), pl.col("items").sum())
    labels = counts.get_column("resolution").to_list()
    windows = dict(zip(labels, counts.get_column("len").to_list(), strict=True))
    ticks = dict(zip(labels, counts.get_column("items").to_list(), strict=True))
    return windows, ticks


def _split(frame: pl.DataFrame, symbols: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Return the rows of ``frame`` whose symbol is in ``symbols``, and the others."""
    if frame.height == 0:
        return frame, frame
    mine = frame.get_column("symbol").is_in(symbols.implode())
    if mine.all():
        return frame, frame.clear()
    return frame.filter(mine), frame.filter(~mine)


def _append(rest: pl.DataFrame, more: pl.DataFrame) -> pl.DataFrame:
    if rest.height == 0:
        return more
    out = pl.concat([rest, more], how="vertical")
    return out.rechunk() if out.n_chunks() > _MAX_CHUNKS else out


def _int(value: object) -> int:
    assert isinstance(value, int)  # min/max of a non-empty Int64 column
    return value


def _concat_bars(frames: list[pl.DataFrame]) -> pl.DataFrame:
    frames = [frame for frame in frames if frame.height]
    if not frames:
        return empty_bars()
    return pl.concat(frames, how="vertical") if len(frames) > 1 else frames[0]
