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

Allowed lateness (``allowed_lateness_ns`` > 0, see ``aggregation/lateness.py`` and
docs/lateness.md): a closed window is *retained*, per symbol, until the symbol's watermark passes
``window_end + allowed_lateness``. A late item whose window end + allowed lateness is still
above the watermark it meets *revises* the window: it is folded in as if it had come in time
and the bar is returned again with ``revision`` + 1 (bars then carry a ``revision`` column).
Later items are late as before; with ``keep_late=True`` they are also kept with the window they
missed, for ``take_late()``. Retained windows are part of ``open_state()`` (a ``revising``
column, null for open windows). With ``allowed_lateness_ns=0`` and ``keep_late=False`` none of
this runs: frames take exactly the path described above.
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
from .lateness import (
    LATE_SCHEMA,
    RETAINED_SCHEMA,
    REVISING,
    REVISION,
    Revised,
    empty_retained,
    expire,
    late_rows,
    revise,
)
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
    # With allowed lateness: ticks that revised a closed window (inside ``ticks_in_bars``),
    # windows whose bar holds such ticks, bars returned again (inside ``bars_emitted``), and
    # closed windows still retained.
    ticks_revising: int = 0
    bars_revised: int = 0
    bars_rewritten: int = 0
    retained_windows: int = 0


@dataclass(slots=True)
class _Counters:
    ticks_in: int = 0
    ticks_late: int = 0
    ticks_in_bars: int = 0
    bars_emitted: int = 0
    ticks_outside: int = 0
    ticks_revising: int = 0
    bars_revised: int = 0
    bars_rewritten: int = 0


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
        allowed_lateness_ns: int = 0,
        keep_late: bool = False,
    ) -> None:
        labels = [res.label for res in resolutions]
        if not labels:
            raise UsageError("the bar engine needs at least one resolution")
        if len(set(labels)) != len(labels):
            raise UsageError(f"duplicate resolution in {labels}")
        if grace_ns < 0:
            raise UsageError(f"grace must not be negative, got {grace_ns} ns")
        if allowed_lateness_ns < 0:
            raise UsageError(f"allowed lateness must not be negative, got {allowed_lateness_ns} ns")
        self.resolutions = list(resolutions)
        self.allowed_lateness_ns = allowed_lateness_ns
        self.keep_late = keep_late
        self._retained = empty_retained()  # closed windows kept for allowed lateness
        self._late: list[pl.DataFrame] = []  # late items kept for take_late()
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
        allowed_lateness_ns: int = 0,
        keep_late: bool = False,
    ) -> BarEngine:
        """Build an engine that continues from ``open_state()`` and ``watermarks()`` of another.

        The restored open ticks count as ticks in of the new engine, so its reconciliation
        holds from the start; ticks already in emitted bars or late belong to the old run.
        """
        engine = cls(
            resolutions,
            grace_ns,
            max_held_rows=max_held_rows,
            windows=windows,
            allowed_lateness_ns=allowed_lateness_ns,
            keep_late=keep_late,
        )
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
        out.append(self._revisioned(self._emit(self._state)))
        self._state = empty_partials()
        self._retained = empty_retained()  # nothing can revise them any more
        self._next_end = None
        return self._revisioned(_concat_bars(out))

    def stats(self) -> dict[str, ResolutionStats]:
        """Return the counters of every resolution, keyed by label."""
        self._settle()
        windows, ticks = _per_resolution(self._state)
        retained = _per_resolution(self._retained)[0] if self._retained.height else {}
        return {
            label: ResolutionStats(
                c.ticks_in,
                c.ticks_late,
                c.ticks_in_bars,
                c.bars_emitted,
                windows.get(label, 0),
                ticks.get(label, 0),
                c.ticks_outside,
                c.ticks_revising,
                c.bars_revised,
                c.bars_rewritten,
                retained.get(label, 0),
            )
            for label, c in self._counters.items()
        }

    def late_by_origin(self) -> dict[int, int]:
        """Return the ticks late in the finest resolution per ``origin`` value of their frames."""
        self._settle()
        return dict(self._late_by_origin)

    def take_late(self) -> pl.DataFrame:
        """Return and forget the late items kept so far (``LATE_SCHEMA``; ``keep_late=True``).

        Items of frames still held come once those are folded in (``add_*``, ``flush``, a
        snapshot), so nothing is lost by asking early.
        """
        out, self._late = self._late, []
        if not out:
            return pl.DataFrame(schema=LATE_SCHEMA)
        return pl.concat(out, how="vertical") if len(out) > 1 else out[0]

    def state_rows(self) -> tuple[int, int]:
        """Return the number of open and of retained windows (the engine's state size)."""
        return self._state.height, self._retained.height

    def open_state(self) -> pl.DataFrame:
        """Return every open window as a partial row (``OPEN_STATE_SCHEMA``), for a checkpoint.

        With allowed lateness the retained closed windows come too, with a ``revising``
        column (null for open windows): the checkpoint commits them with the bars.

        Bars already returned by ``add_*`` are not in it; a frame still held is folded in first.
        A checkpoint of returned bars plus this state is exact only while held frames close
        nothing, i.e. with ``max_hold_s=0``: otherwise this raises ``UsageError`` when a held
        frame closed windows whose bars the next ``add_*`` would return.
        """
        self._settle_for_snapshot()
        if not self.allowed_lateness_ns:
            return self._state.rechunk()
        open_rows = self._state.with_columns(pl.lit(None, pl.Int64).alias(REVISING))
        return pl.concat([open_rows, self._retained], how="vertical").rechunk()

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
        if dict(open_state.schema) == RETAINED_SCHEMA:
            retained = open_state.get_column(REVISING).is_not_null()
            self._retained = open_state.filter(retained)
            open_state = open_state.filter(~retained).drop(REVISING)
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
        # A frame holding a late tick then counts as one that may close a window: with allowed
        # lateness it revises a bar, which a snapshot must not find held back.
        self._max_ts = self._marks_max
        for label, ticks in _per_resolution(open_state)[1].items():
            self._counters[label].ticks_in = ticks
        self._next_end = self._earliest_open_end()

    def _add(self, frame: pl.DataFrame, kind: _Kind) -> pl.DataFrame:
        if self._flushed:
            raise UsageError("the bar engine was flushed; start a new one for more data")
        out, self._carry = self._carry, []
        frame = self._drop_outside(frame)
        if frame.height == 0:
            return self._revisioned(_concat_bars(out))
        if kind != self._held_kind:
            out.append(self._drain())
            self._held_kind = kind
        self._hold(frame)
        if self._held_rows >= self.max_held_rows or (self._may_close() and self._drain_pays()):
            out.append(self._drain())
        return self._revisioned(_concat_bars(out))

    def _revisioned(self, bars: pl.DataFrame) -> pl.DataFrame:
        """With allowed lateness every bar frame has ``revision`` (0 unless revised)."""
        if not self.allowed_lateness_ns or REVISION in bars.columns:
            return bars
        return bars.with_columns(pl.lit(0, pl.Int64).alias(REVISION))

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
        if self.allowed_lateness_ns or self.keep_late:
            return self._ingest_late(blocks, partials, symbols, marks)
        new = [partials(self._drop_late(label, items), label) for label, items in blocks]
        closed = self._fold(pl.concat(new) if len(new) > 1 else new[0], symbols, marks)
        self._next_end = self._earliest_open_end()
        return self._emit(closed)

    def _ingest_late(
        self,
        blocks: list[tuple[str, pl.DataFrame]],
        partials: Callable[[pl.DataFrame, str], pl.DataFrame],
        symbols: pl.Series,
        marks: pl.DataFrame,
    ) -> pl.DataFrame:
        """``_ingest`` with allowed lateness or a side output of late items."""
        new, revising, masks = [], [], {}
        for label, items in blocks:
            kept, late, too_late = self._split_late(label, items)
            new.append(partials(kept, label))
            if late is not None and late.height:
                revising.append(partials(late, label))
            if too_late is not None:
                masks[label] = too_late
        if self.keep_late and masks:
            self._keep_late_rows(blocks, masks)
        closed = self._fold(pl.concat(new) if len(new) > 1 else new[0], symbols, marks)
        self._next_end = self._earliest_open_end()
        if not self.allowed_lateness_ns:
            return self._emit(closed)
        rev = pl.concat(revising) if len(revising) > 1 else (revising[0] if revising else None)
        return self._emit_revised(revise(closed, self._retained, rev), marks)

    def _split_late(
        self, label: str, items: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame | None, pl.Series | None]:
        """Count ``items`` in; return the in-time ones, the revising ones and the too-late mask.

        An item is late when its window closed before it came (``window_end <= limit``); it
        revises that window while ``window_end + allowed lateness > limit``, else it is too late.
        """
        counters = self._counters[label]
        counters.ticks_in += items.height
        if "limit" not in items.columns:
            return items, None, None
        end, limit = items.get_column("window_end"), items.get_column("limit")
        late = (end <= limit).fill_null(False)
        if not late.any():
            return items.drop("limit"), None, None
        too_late = late
        if self.allowed_lateness_ns:
            too_late = (end + self.allowed_lateness_ns <= limit).fill_null(False)
        dropped = int(too_late.sum())
        counters.ticks_late += dropped
        counters.ticks_revising += int(late.sum()) - dropped
        if dropped and ORIGIN in items.columns and label == self._finest:
            origins = items.get_column(ORIGIN).filter(too_late).drop_nulls()
            for origin, count in origins.value_counts().rows():
                self._late_by_origin[origin] = self._late_by_origin.get(origin, 0) + count
        revising = items.filter(late & ~too_late).drop("limit") if dropped < late.sum() else None
        return items.filter(~late).drop("limit"), revising, too_late

    def _keep_late_rows(
        self, blocks: list[tuple[str, pl.DataFrame]], masks: dict[str, pl.Series]
    ) -> None:
        order = sorted(self.resolutions, key=lambda res: res.ns, reverse=True)
        coarse_first = [(res.label, masks[res.label]) for res in order if res.label in masks]
        windows = {label: items for label, items in blocks}
        reason = "beyond allowed lateness" if self.allowed_lateness_ns else "window closed"
        rows = late_rows(windows, coarse_first, reason)
        if rows.height:
            self._late.append(rows)

    def _emit_revised(self, revised: Revised, marks: pl.DataFrame) -> pl.DataFrame:
        """Count and return the bars of ``revised``; keep its windows until they expire."""
        for label, counts in revised.counts().items():
            counters = self._counters[label]
            counters.bars_emitted += counts.bars
            counters.ticks_in_bars += counts.ticks
            counters.bars_rewritten += counts.rewritten
            counters.bars_revised += counts.revised
        horizon = self.grace_ns + self.allowed_lateness_ns
        self._retained = expire(revised.retained, marks, horizon)
        return revised.bars

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
