"""Activity bars: a bar every N ticks, every V of volume or every X of traded value, per symbol.

The definition (López de Prado's tick, volume and dollar bars, nautilus_trader's TICK, VOLUME
and VALUE bar types): per symbol, ticks in event order add to a running count, volume (sum of
sizes) or value (sum of price x size); the bar closes with the tick at which the total reaches
the threshold (that tick belongs to the bar, its size is not split) and the next bar starts with
the next tick. A bar records OHLC, volume, vwap, the tick count, its first tick's event time
(``ts_ns``) and its last one's (``end_ts_ns``).

Event order: ticks at the same event time keep their arrival order, as for time bars. A tick
waits in ``pending`` until its symbol's watermark (max event time seen - grace) passes it; only
then is it counted into a bar, in event-time order. A tick that arrives behind its symbol's
watermark is *late*: counted per resolution and never part of a bar, so no closed bar changes
or reorders. The ticks counted into bars are therefore exactly the non-late ticks of each
symbol, stably sorted by event time, whatever the frames' cut: the late rule depends only on
arrival order, and a tick can only be released after every non-late tick that sorts before it
has arrived (a later one below the watermark would be late).

Keys: ``ts_ns`` is the first tick's event time, to the microsecond (the stores' precision). Two
bars of one symbol and resolution whose first ticks fall in the same microsecond would share a
primary key, so a bar is stamped at least 1 us after the previous one (``ts = max(first tick,
previous ts + 1 us)``); ``end_ts_ns`` is not adjusted. Bars written at the end of a run before
reaching their threshold carry ``incomplete = True``; their state stays in the checkpoint, so a
later run that continues it writes the finished bar under the same key, replacing the partial.

State (``state()``/``restore``): one frame holding the open bar of every (resolution, symbol)
(``items`` 0 when the last bar just closed; the row still keeps the last ``ts_ns``), the ticks
pending per symbol and the watermarks, told apart by ``part``. It travels inside the bar
engine's open state, so a checkpoint commits it with the bars and the source position.

Thresholds are compared with a running sum in float64; prices on a binary grid (ticks of 0.25,
0.125 ...) and whole sizes sum exactly, so those bars are exact. Cost per frame: a sort, a few
group-bys, and one vectorised search per bar closed (over all symbols at once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from ..errors import BadInputError, UsageError
from ..frames import BAR_SCHEMA, empty_bars
from .builder import ResolutionStats
from .frame_checks import late_possible
from .resolution import Resolution

US = 1_000  # ns per microsecond: stored timestamps keep microseconds
PART = "part"  # the state frame's row kind
_BAR, _PENDING, _MARK = "bar", "pending", "mark"
STATE_SCHEMA: dict[str, pl.DataType] = {
    PART: pl.String(),
    "resolution": pl.String(),
    "symbol": pl.String(),
    "ts_ns": pl.Int64(),  # bar: its key; pending: the tick's event time; mark: max event time
    "end_ts_ns": pl.Int64(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "pv": pl.Float64(),
    "items": pl.Int64(),
    "price": pl.Float64(),  # pending ticks: price, size, bid, ask
    "size": pl.Float64(),
    "bid": pl.Float64(),
    "ask": pl.Float64(),
}
_OPEN_SCHEMA = {
    name: STATE_SCHEMA[name]
    for name in (
        "resolution",
        "symbol",
        "ts_ns",
        "end_ts_ns",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "pv",
        "items",
    )
}
_TICK_COLUMNS = ("symbol", "ts_ns", "price", "size", "bid", "ask")
_TICK_SCHEMA = {name: STATE_SCHEMA[name] for name in _TICK_COLUMNS}
_MARK_SCHEMA = {"symbol": pl.String(), "max_ts_ns": pl.Int64()}


@dataclass(slots=True)
class _Counters:
    ticks_in: int = 0
    ticks_late: int = 0
    ticks_in_bars: int = 0
    bars_emitted: int = 0


class ActivityEngine:
    """Build tick, volume and value bars of several resolutions from tick frames."""

    def __init__(self, resolutions: Sequence[Resolution], grace_ns: int) -> None:
        if not resolutions or not all(res.is_activity for res in resolutions):
            raise UsageError("the activity engine takes tick, volume and value resolutions")
        self.resolutions = list(resolutions)
        self.grace_ns = grace_ns
        self._open = pl.DataFrame(schema=_OPEN_SCHEMA)
        self._pending = pl.DataFrame(schema=_TICK_SCHEMA)
        self._marks = pl.DataFrame(schema=_MARK_SCHEMA)
        self._marks_max: int | None = None
        self._counters = {res.label: _Counters() for res in self.resolutions}
        self._flushed = False

    # -- checkpoint ----------------------------------------------------------------------------
    def state(self) -> pl.DataFrame:
        """Return open bars, pending ticks and watermarks as one frame (``STATE_SCHEMA``)."""
        parts = [
            self._open.with_columns(pl.lit(_BAR).alias(PART)),
            self._pending.with_columns(pl.lit(_PENDING).alias(PART)),
            self._marks.rename({"max_ts_ns": "ts_ns"}).with_columns(pl.lit(_MARK).alias(PART)),
        ]
        frames = [frame.select(pl.col(c) for c in frame.columns) for frame in parts]
        merged = pl.concat(frames, how="diagonal")
        return merged.select(
            pl.col(n).cast(t) if n in merged.columns else pl.lit(None, t).alias(n)
            for n, t in STATE_SCHEMA.items()
        )

    @classmethod
    def restore(
        cls, resolutions: Sequence[Resolution], grace_ns: int, state: pl.DataFrame
    ) -> ActivityEngine:
        """Build an engine that continues from ``state()`` of another one.

        Restored open and pending ticks count as ticks in of the new engine.
        """
        engine = cls(resolutions, grace_ns)
        missing = [name for name in STATE_SCHEMA if name not in state.columns]
        if missing:
            raise BadInputError(f"activity state lacks column(s) {', '.join(missing)}")
        kind = state.get_column(PART)
        bars = state.filter(kind == _BAR).select(list(_OPEN_SCHEMA))
        unknown = set(bars.get_column("resolution").unique()) - set(engine._counters)
        if unknown:
            raise BadInputError(f"activity state has resolutions {sorted(unknown)} not built here")
        engine._open = bars
        pending = state.filter(kind == _PENDING).select(list(_TICK_SCHEMA))
        if pending.get_column("bid").null_count() == pending.height:
            pending = pending.drop("bid", "ask")  # trades (see ``_ticks``)
        engine._pending = pending
        engine._marks = state.filter(kind == _MARK).select(
            "symbol", pl.col("ts_ns").alias("max_ts_ns")
        )
        if engine._marks.height:
            engine._marks_max = _int(engine._marks.get_column("max_ts_ns").max())
        waiting = engine._pending.height
        open_items = dict(bars.group_by("resolution").agg(pl.col("items").sum()).rows())
        for label, counters in engine._counters.items():
            counters.ticks_in = waiting + int(open_items.get(label, 0))
        return engine

    # -- the stream ----------------------------------------------------------------------------
    def add_ticks(self, ticks: pl.DataFrame) -> pl.DataFrame:
        """Fold a tick frame in (``symbol, ts_ns, price, size`` and, for quotes, ``bid, ask``);
        return the bars it closed (``BAR_SCHEMA``)."""
        if self._flushed:
            raise UsageError("the bar engine was flushed; start a new one for more data")
        if ticks.height == 0:
            return empty_bars()
        frame = _ticks(ticks)
        for counters in self._counters.values():
            counters.ticks_in += frame.height
        frame = self._drop_late(frame)
        if frame.height == 0:
            return empty_bars()
        released = self._release(frame)
        if released is None:
            return empty_bars()
        return _concat([self._build(res, released) for res in self.resolutions])

    def flush(self) -> pl.DataFrame:
        """Count every pending tick in, emit every unfinished bar (``incomplete``), end."""
        out = []
        if self._pending.height:
            order, starts, ends = _sort_runs(self._pending)
            symbols = self._pending.get_column("symbol").gather(order[starts])
            released = _Runs.of(self._pending, order, symbols, ends - starts)
            self._pending = self._pending.clear()
            out = [self._build(res, released) for res in self.resolutions]
        self._flushed = True
        unfinished = self._open.filter(pl.col("items") > 0)
        for label, count, items in (
            unfinished.group_by("resolution").agg(pl.len(), pl.col("items").sum()).rows()
        ):
            self._counters[label].bars_emitted += count
            self._counters[label].ticks_in_bars += items
        out.append(_finish(unfinished, incomplete=True))
        self._open = self._open.clear()
        return _concat(out)

    def stats(self) -> dict[str, ResolutionStats]:
        """Return the counters of every resolution, keyed by label (see ``ResolutionStats``)."""
        open_bars = self._open.filter(pl.col("items") > 0)
        per = {
            label: (count, items)
            for label, count, items in open_bars.group_by("resolution")
            .agg(pl.len(), pl.col("items").sum())
            .rows()
        }
        pending = self._pending.height
        out = {}
        for label, c in self._counters.items():
            windows, items = per.get(label, (0, 0))
            out[label] = ResolutionStats(
                c.ticks_in,
                c.ticks_late,
                c.ticks_in_bars,
                c.bars_emitted,
                windows,
                int(items) + pending,
            )
        return out

    # -- steps ---------------------------------------------------------------------------------
    def _drop_late(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Count and drop the ticks behind their symbol's watermark at arrival."""
        if not late_possible(frame.get_column("ts_ns"), self._marks_max, self.grace_ns):
            return frame  # nothing lies below the running max of all symbols - grace
        known = frame.select("symbol").join(
            self._marks, on="symbol", how="left", maintain_order="left"
        )
        running = pl.col("ts_ns").cum_max().shift(1).over("symbol")
        prior = pl.max_horizontal(running, known.get_column("max_ts_ns"))
        late = frame.select((pl.col("ts_ns") < prior - self.grace_ns).fill_null(False)).to_series()
        count = int(late.sum())
        if not count:
            return frame
        for counters in self._counters.values():
            counters.ticks_late += count
        return frame.filter(~late)

    def _release(self, frame: pl.DataFrame) -> _Runs | None:
        """Add ``frame`` to the pending ticks and raise the watermarks; return (and forget) the
        ticks below their symbol's watermark - grace, as runs per symbol in event-time order.

        One stable sort by (symbol, event time) of the pending and new ticks (pending first,
        so ties keep arrival order). A symbol's released ticks are a prefix of its run, so one
        comparison per row splits them off.
        """
        both = pl.concat([self._pending, frame], how="diagonal") if self._pending.height else frame
        order, starts, ends = _sort_runs(both)
        ts = both.get_column("ts_ns").to_numpy()[order]
        run_symbols = both.get_column("symbol").gather(order[starts])
        seen = pl.DataFrame({"symbol": run_symbols, "high": ts[ends - 1]})
        known = seen.join(self._marks, on="symbol", how="left", maintain_order="left")
        marks = known.select("symbol", pl.max_horizontal("high", "max_ts_ns").alias("max_ts_ns"))
        rest = self._marks.join(seen, on="symbol", how="anti")
        self._marks = pl.concat([rest, marks]) if rest.height else marks
        high = _int(marks.get_column("max_ts_ns").max())
        self._marks_max = high if self._marks_max is None else max(self._marks_max, high)
        limits = marks.get_column("max_ts_ns").to_numpy() - self.grace_ns
        ready = ts < np.repeat(limits, ends - starts)
        if ready.all():
            self._pending = self._pending.clear()
        else:
            self._pending = both[order[~ready]]
        taken = np.add.reduceat(ready, starts)  # released rows per run
        if not taken.any():
            return None
        return _Runs.of(both, order[ready], run_symbols.filter(pl.Series(taken > 0)), taken)

    def _build(self, res: Resolution, ticks: _Runs) -> pl.DataFrame:
        """Fold ``ticks`` into ``res``'s bars; return the bars that closed, keep the open ones."""
        touched = ticks.symbols
        mine = self._open.get_column("resolution") == res.label
        state = self._open.filter(mine & pl.col("symbol").is_in(touched.implode()))
        rest = self._open.filter(~(mine & pl.col("symbol").is_in(touched.implode())))
        groups = _groups(ticks, res, state)
        merged = _merge_state(groups, state, res.label)
        stamped = _stamp(merged)
        closed = stamped.filter(pl.col("closed"))
        last = stamped.filter(pl.col("last"))
        # A symbol whose last group closed keeps an empty row: the next bar's ts follows it.
        emptied = last.filter(pl.col("closed")).with_columns(
            pl.lit(0, pl.Int64).alias("items"),
            pl.lit(0.0).alias("volume"),
            pl.lit(0.0).alias("pv"),
        )
        still_open = last.filter(~pl.col("closed"))
        carried = pl.concat([still_open, emptied]).select(list(_OPEN_SCHEMA))
        self._open = pl.concat([rest, carried])
        counters = self._counters[res.label]
        counters.bars_emitted += closed.height
        counters.ticks_in_bars += int(closed.get_column("items").sum())
        return _finish(closed, incomplete=False)


def _ticks(ticks: pl.DataFrame) -> pl.DataFrame:
    """Return the tick columns the engine keeps (``bid``/``ask`` null for trades)."""
    missing = [name for name in ("symbol", "ts_ns", "price", "size") if name not in ticks.columns]
    if missing:
        raise BadInputError(f"tick frame lacks column(s) {', '.join(missing)}")
    # Trades carry no bid and ask: leaving the columns out spares sorting two null columns.
    quotes = "bid" in ticks.columns and "ask" in ticks.columns
    return ticks.select(
        pl.col(name).cast(dtype)
        for name, dtype in _TICK_SCHEMA.items()
        if quotes or name not in ("bid", "ask")
    )


@dataclass(frozen=True, slots=True)
class _Runs:
    """Ticks as numpy columns in (symbol, event time) order, one run of rows per symbol."""

    symbols: pl.Series  # the symbol of each run
    starts: np.ndarray
    ends: np.ndarray  # exclusive
    ts: np.ndarray
    size: np.ndarray
    prices: dict[str, np.ndarray]  # price, and for quotes bid and ask

    @classmethod
    def of(
        cls, ticks: pl.DataFrame, rows: np.ndarray, symbols: pl.Series, lengths: np.ndarray
    ) -> _Runs:
        """Take ``rows`` of ``ticks`` (runs of ``lengths`` rows, one per symbol)."""
        lengths = lengths[lengths > 0]
        ends = np.cumsum(lengths)
        prices = [name for name in ("price", "bid", "ask") if name in ticks.columns]
        return cls(
            symbols=symbols,
            starts=ends - lengths,
            ends=ends,
            ts=ticks.get_column("ts_ns").to_numpy()[rows],
            size=ticks.get_column("size").to_numpy()[rows],
            prices={name: ticks.get_column(name).to_numpy()[rows] for name in prices},
        )


def _sort_runs(ticks: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the row order that sorts ``ticks`` by symbol, then event time, stably (ties keep
    their order), and the start and (exclusive) end of each symbol's run in that order.

    Symbols are sorted by their codes as a categorical, never as text, and only the order is
    computed: the columns are gathered as numpy arrays, the symbol once per run.
    """
    codes = ticks.get_column("symbol").cast(pl.Categorical).to_physical().to_numpy()
    if codes.size and codes.max() < 2**16:
        codes = codes.astype(np.uint16)  # numpy's stable sort of 16-bit keys is a radix sort
    ts = ticks.get_column("ts_ns")
    if ts.is_sorted():
        order = np.argsort(codes, kind="stable")
    else:
        by_time = np.argsort(ts.to_numpy(), kind="stable")  # nearly sorted input: cheap
        order = by_time[np.argsort(codes[by_time], kind="stable")]
    ordered = codes[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    return order, starts, np.append(starts[1:], ordered.size)


def _price_column(res: Resolution) -> str:
    return res.price if res.price in ("bid", "ask") else "price"


def _measure(res: Resolution, price: np.ndarray, size: np.ndarray) -> np.ndarray:
    if res.unit == "tick":
        return np.ones(size.size, dtype=np.float64)
    if res.unit == "volume":
        return size
    value: np.ndarray = price * size
    return value


def _groups(ticks: _Runs, res: Resolution, state: pl.DataFrame) -> pl.DataFrame:
    """Split each symbol's ticks into bars; one row per (symbol, bar) with its aggregates,
    ``closed`` (the threshold was reached) and ``first``/``last`` (the symbol's first and last
    bar in this frame)."""
    n = ticks.ts.size
    starts, ends = ticks.starts, ticks.ends
    carried = (
        pl.DataFrame({"symbol": ticks.symbols})
        .join(state, on="symbol", how="left", maintain_order="left")
        .get_column(_ACCUMULATED[res.unit])
        .fill_null(0)
        .to_numpy()
        .astype(np.float64)
    )
    price, size, ts = ticks.prices[_price_column(res)], ticks.size, ticks.ts
    closes = _closing_ticks(_measure(res, price, size), starts, ends, carried, res.threshold)
    brk = np.zeros(n, dtype=bool)
    brk[closes] = True
    closed_at = brk.copy()
    brk[ends - 1] = True  # a symbol's run ends a group too
    # Groups are runs of rows: numpy's reduceat folds each run without hashing a key.
    first = np.concatenate(([0], np.flatnonzero(brk[:-1]) + 1))
    last = np.append(first[1:], n) - 1
    run_starts, run_ends = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    run_starts[starts], run_ends[ends - 1] = True, True
    run_of = np.searchsorted(starts, first, side="right") - 1
    return pl.DataFrame(
        {
            "symbol": ticks.symbols.gather(run_of),
            "first_ts": ts[first],
            "end_ts_ns": ts[last],
            "open": price[first],
            "high": np.maximum.reduceat(price, first),
            "low": np.minimum.reduceat(price, first),
            "close": price[last],
            "volume": np.add.reduceat(size, first),
            "pv": np.add.reduceat(price * size, first),
            "items": (last - first + 1).astype(np.int64),
            "closed": closed_at[last],
            "first": run_starts[first],
            "last": run_ends[last],
        }
    )


_ACCUMULATED = {"tick": "items", "volume": "volume", "value": "pv"}


def _closing_ticks(
    measure: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    carried: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """Return the rows at which a bar closes: per symbol run ``[start, end)``, the running sum
    of ``measure`` (starting at ``carried``, reset after each close) reaches ``threshold``.

    One ``searchsorted`` over all runs per round; a round closes one bar in every run still
    going, so the rounds are as many as the most bars one symbol closes in the frame.
    """
    total = np.cumsum(measure)
    before = np.concatenate(([0.0], total))  # before[i]: sum of measure[:i]
    base = before[starts] - carried  # the running sum of each run's open bar is total - base
    active = np.arange(len(starts))
    out = []
    while active.size:
        hit = np.searchsorted(total, base[active] + threshold, side="left")
        inside = hit < ends[active]
        active, hit = active[inside], hit[inside]
        out.append(hit)
        base[active] = total[hit]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _merge_state(groups: pl.DataFrame, state: pl.DataFrame, label: str) -> pl.DataFrame:
    """Fold each symbol's open bar from ``state`` into its first group; add ``prev_ts`` (the
    ts of the bar before each symbol's first new bar) for stamping."""
    joined = groups.join(
        state.drop("resolution").rename(lambda name: f"{name}_s" if name != "symbol" else name),
        on="symbol",
        how="left",
        maintain_order="left",
    )
    continues = pl.col("first") & (pl.col("items_s").fill_null(0) > 0)

    def merged(name: str, expr: pl.Expr) -> pl.Expr:
        return pl.when(continues).then(expr).otherwise(pl.col(name)).alias(name)

    return joined.select(
        pl.lit(label).alias("resolution"),
        "symbol",
        pl.when(continues).then(pl.col("ts_ns_s")).otherwise(None).alias("kept_ts"),
        pl.when(pl.col("first")).then(pl.col("ts_ns_s")).otherwise(None).alias("prev_ts"),
        "first_ts",
        "end_ts_ns",
        merged("open", pl.col("open_s")),
        merged("high", pl.max_horizontal("high", "high_s")),
        merged("low", pl.min_horizontal("low", "low_s")),
        "close",
        merged("volume", pl.col("volume") + pl.col("volume_s")),
        merged("pv", pl.col("pv") + pl.col("pv_s")),
        merged("items", pl.col("items") + pl.col("items_s")),
        "closed",
        "first",
        "last",
    )


def _stamp(groups: pl.DataFrame) -> pl.DataFrame:
    """Give every bar its key ``ts_ns``: the first tick's microsecond, at least 1 us after the
    previous bar of its symbol (see the module docstring).

    ``ts_k = max(f_k, ts_{k-1} + 1us)`` unrolls to ``ts_k = k us + max_{j<=k}(f_j - j us)``
    with ``f_0`` the previous bar's ts: a cumulative max per symbol, no loop.
    """
    floor = pl.col("first_ts") - pl.col("first_ts") % US
    # A continued bar keeps its ts; a new first bar follows the previous ts (if any).
    start = pl.coalesce("kept_ts", pl.max_horizontal(floor, pl.col("prev_ts") + US))
    naive = groups.with_columns(
        pl.when(pl.col("first")).then(start).otherwise(floor).alias("ts_ns")
    )
    ts = naive.get_column("ts_ns").to_numpy()
    rising = (ts[1:] > ts[:-1]) | naive.get_column("first").to_numpy()[1:]
    if rising.all():  # usual: every bar starts in a later microsecond than the one before
        return naive
    k = pl.int_range(pl.len()).over("symbol")
    value = pl.when(pl.col("first")).then(start).otherwise(floor) - k * US
    return groups.with_columns((value.cum_max().over("symbol") + k * US).alias("ts_ns"))


def _finish(bars: pl.DataFrame, *, incomplete: bool) -> pl.DataFrame:
    """Turn open-bar rows into ``BAR_SCHEMA`` bars."""
    if bars.height == 0:
        return empty_bars()
    vwap = pl.when(pl.col("volume") > 0).then(pl.col("pv") / pl.col("volume")).otherwise(None)
    derived = {
        "vwap": vwap.cast(pl.Float64),
        "trades": pl.col("items"),
        "incomplete": pl.lit(incomplete),
    }
    return bars.select(
        derived.get(name, pl.col(name)).cast(t).alias(name) for name, t in BAR_SCHEMA.items()
    )


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame:
    frames = [frame for frame in frames if frame.height]
    if not frames:
        return empty_bars()
    return pl.concat(frames) if len(frames) > 1 else frames[0]


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value
