"""Several replay files as one stream in event time, and rows that two files (or chunks) repeat.

``merge_by_time`` is a streaming k-way merge over chunks. Each input keeps a small buffer; the
*bound* is the smallest "latest time read so far" among the inputs not yet finished. Every row
below the bound is emitted (sorted by time, ties in the order the inputs were given), because no
time-sorted input can still produce an earlier row; rows at or above it wait. Inputs whose
buffer ran low are read further. Memory stays about 1.5 chunks per input, whatever the length
of the files, and a set of time-sorted files comes out in time order, never late, whatever
their names or the order given. Rows at one timestamp leave together, so the duplicate check
below sees all of them at once.

``DuplicateCheck`` compares rows at the same event time: for bars any two rows with the same
symbol and time (two files, or two chunks of one file), for trades and quotes identical rows
from two different files (one file may hold two equal trades: two fills at the same price and
time are real). It keeps the rows at the latest time seen, so a repeat across a chunk boundary
is found too; it is exact for time-sorted inputs, and a repeat far from its twin in a file that
is itself out of order is not looked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import polars as pl

from ..base import TickKind

FILE_COLUMN = "origin"  # index of the input file a row came from (UInt32)
ROW_COLUMN = "_row"  # the row's number in its file, as bad-row messages count it
_KEYS: dict[str, tuple[str, ...]] = {
    "bars": ("symbol", "ts_ns"),
    "trades": ("symbol", "ts_ns", "price", "size"),
    "quotes": ("symbol", "ts_ns", "bid", "ask", "bid_size", "ask_size"),
}


class _Input:
    """One file's frames, a buffer of rows not yet emitted and the latest time read."""

    def __init__(self, frames: Iterator[pl.DataFrame]) -> None:
        self._frames = frames
        self.buffer: pl.DataFrame | None = None
        self.max_ts: int | None = None
        self.min_ts: int | None = None
        self.done = False
        self.last_rows = 0

    def pull(self) -> None:
        """Read the next non-empty frame into the buffer (or mark the input finished)."""
        for frame in self._frames:
            if frame.height:
                self._append(frame)
                return
        self.done = True

    def _append(self, frame: pl.DataFrame) -> None:
        ts = frame.get_column("ts_ns")
        low, high = _int(ts.min()), _int(ts.max())
        self.last_rows = frame.height
        self.buffer = frame if self.buffer is None else pl.concat([self.buffer, frame])
        self.max_ts = high if self.max_ts is None else max(self.max_ts, high)
        self.min_ts = low if self.min_ts is None else min(self.min_ts, low)

    def take_below(self, bound: int | None) -> pl.DataFrame | None:
        """Remove and return the buffered rows with ts < ``bound`` (all when None)."""
        if self.buffer is None or (bound is not None and (self.min_ts or 0) >= bound):
            return None
        if bound is None:
            out, self.buffer, self.min_ts = self.buffer, None, None
            return out
        below = self.buffer.get_column("ts_ns") < bound
        out, rest = self.buffer.filter(below), self.buffer.filter(~below)
        self.buffer = rest if rest.height else None
        self.min_ts = _int(rest.get_column("ts_ns").min()) if rest.height else None
        return out

    def runs_low(self, bound: int | None) -> bool:
        left = 0 if self.buffer is None else self.buffer.height
        return not self.done and (self.max_ts == bound or 2 * left < self.last_rows)


def merge_by_time(inputs: Sequence[Iterator[pl.DataFrame]]) -> Iterator[pl.DataFrame]:
    """Merge frames of several inputs (each with a ``ts_ns`` column) into one stream in time."""
    sources = [_Input(frames) for frames in inputs]
    for source in sources:
        source.pull()
    while True:
        live = [s.max_ts for s in sources if not s.done and s.max_ts is not None]
        bound = min(live) if live else None
        parts = [part for s in sources if (part := s.take_below(bound)) is not None]
        if parts:
            yield _in_time_order(parts)
        elif bound is None:
            return
        for source in sources:
            if source.runs_low(bound):
                source.pull()


def _in_time_order(parts: list[pl.DataFrame]) -> pl.DataFrame:
    if len(parts) == 1:
        return parts[0]  # one file's own order is kept, as when it is replayed alone
    return pl.concat(parts, how="vertical").sort("ts_ns", maintain_order=True)


@dataclass(frozen=True)
class Duplicate:
    """A row that repeats an earlier one: where each of them is (file index, row number)."""

    symbol: str
    ts_ns: int
    first: tuple[int, int]
    again: tuple[int, int]


class DuplicateCheck:
    """Find rows of a stream (with ``FILE_COLUMN`` and ``ROW_COLUMN``) that repeat earlier ones."""

    def __init__(self, kind: TickKind) -> None:
        self.kind = kind
        self._keys = list(_KEYS[kind])
        self._frontier: pl.DataFrame | None = None  # rows at the latest time seen
        self._frontier_ts: int | None = None

    def split(self, frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Return ``frame`` without its repeats, and the repeats (with ``first_*`` columns)."""
        rows = frame.select(*self._keys, FILE_COLUMN, ROW_COLUMN).with_row_index("_at")
        pool = rows if self._frontier is None else pl.concat([self._frontier, rows])
        if not pool.select(self._keys).is_duplicated().any():
            self._remember(frame)
            return frame, pool.clear()
        ranked = pool.with_columns(_first_columns(self._keys, trades=self.kind != "bars"))
        repeats = ranked.filter(pl.col("_at").is_not_null() & pl.col("_first_row").is_not_null())
        self._remember(frame)
        if repeats.height == 0:
            return frame, repeats
        drop = repeats.get_column("_at")
        keep = ~pl.int_range(frame.height, eager=True, dtype=pl.UInt32).is_in(drop.implode())
        return frame.filter(keep), repeats

    def first(self, repeats: pl.DataFrame) -> Duplicate:
        """Describe the first repeat of a ``split`` result."""
        row = repeats.sort("_at").row(0, named=True)
        return Duplicate(
            row["symbol"],
            row["ts_ns"],
            (row["_first_file"], row["_first_row"]),
            (row[FILE_COLUMN], row[ROW_COLUMN]),
        )

    def _remember(self, frame: pl.DataFrame) -> None:
        top = _int(frame.get_column("ts_ns").max())
        if self._frontier_ts is not None and top < self._frontier_ts:
            return  # an older frame: the rows at the latest time stay the frontier
        at_top = frame.filter(pl.col("ts_ns") == top).select(
            pl.lit(None, pl.UInt32).alias("_at"), *self._keys, FILE_COLUMN, ROW_COLUMN
        )
        if self._frontier is not None and top == self._frontier_ts:
            at_top = pl.concat([self._frontier, at_top])
        self._frontier, self._frontier_ts = at_top, top


def _first_columns(keys: list[str], *, trades: bool) -> list[pl.Expr]:
    """The file and row of the first earlier row with the same key (null when none).

    For trades and quotes only a row from another file counts: a file may repeat a trade.
    """
    first_file = pl.col(FILE_COLUMN).first().over(keys)
    first_row = pl.col(ROW_COLUMN).first().over(keys)
    in_another_file = pl.col(FILE_COLUMN) != first_file
    other = in_another_file if trades else pl.int_range(pl.len()).over(keys) > 0
    return [
        pl.when(other).then(first_file).alias("_first_file"),
        pl.when(other).then(first_row).alias("_first_row"),
    ]


def _int(value: object) -> int:
    assert isinstance(value, int)  # min/max of a non-empty Int64 column
    return value
