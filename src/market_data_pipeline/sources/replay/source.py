"""Replay trades, quotes or OHLCV bars from CSV or Parquet files.

Real exports load without editing: column names are matched case-insensitively with common aliases
(see ``columns``), timestamps may be ISO-8601 strings or epoch numbers (see ``timestamps``; an
ISO string without offset is taken as UTC, an epoch unit is detected from the magnitude unless
``ts_unit`` says otherwise), and a file without a symbol column takes the ``symbol`` argument
(a symbol column, when present, wins). Files are streamed in chunks of ``chunk_rows`` rows and
cleaned vectorised. Several files are merged into one stream in event time (``merge``), whatever
their names or the order given; rows that two files repeat are found on the way: for bars a
second bar for the same symbol and time is a bad row (``duplicate bar``, as within one chunk),
for trades and quotes an identical row from another file fails the replay naming both files
(``on_duplicate="fail"``) or is dropped and counted (``"skip"``, reason ``duplicate row``).
``files`` holds per-file counts: rows read, bad, duplicate.

Bad rows (see ``cleaning`` for every rule and reason) either stop the replay with
``BadInputError(reason, path=..., row=N, field=...)`` naming the first one (``on_bad_row="fail"``)
or are dropped and counted under their reason (``"skip"``). ``row`` is the 1-based line number in
a CSV file (the header is line 1) and the 1-based row index in a Parquet file. A CSV line with the
wrong number of fields is a bad row too (reason ``malformed row``); it is reported when its block
is read, which can be before an earlier bad value in the same block. Blank CSV lines (every field
empty, e.g. ``,,,,``) carry no data and are passed over; a line with any non-empty field is a row
like any other, so one whose mapped fields are empty is a bad row (``bad timestamp`` ...).

``layout`` (a preset or ``--columns``, see ``formats``) names the columns of header-less files,
``ts_format`` parses timestamp strings with one strftime format, and ``tz`` is the zone of
naive timestamps (default UTC).

Quotes need both sides: the tick price is the mid ``(bid + ask) / 2``; a one-sided quote is a bad
row (``no bid/ask``).

``resumable`` (``mdp run --resume``) makes the replay a checkpointed source: its position is the
number of rows of the merged stream taken so far, and its checkpoint is named
``replay:HASH`` after the resolved input paths (``replay_checkpoint_name``). Resuming reads the
files again from the start and skips the rows an earlier run committed (bad and duplicate rows
among them are counted again, as in any re-run), so the run continues with exactly the rows an
uninterrupted run would have given the bar engine next. The checkpoint's layout names each
file's size and modification time and the options that shape the stream, so a changed input
is refused rather than resumed at the wrong row.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl
import pyarrow as pa

from ...errors import BadInputError, UsageError
from ...frames import ns_to_datetime
from ..base import SourceInfo, TickKind, TickSource
from ..cleaning import BLANK, CHECKS, clean
from ..columns import ColumnMap, map_columns
from ..timestamps import UNIT_NS, TsUnit
from .formats import Layout
from .merge import FILE_COLUMN, ROW_COLUMN, DuplicateCheck, merge_by_time
from .pacing import Pacer
from .paths import expand_inputs
from .readers import Chunk, column_names, file_format, read_chunks
from .row_count import RowCounts

OnBadRow = Literal["fail", "skip"]
OnDuplicate = Literal["fail", "skip"]
__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "FileStats",
    "ReplaySource",
    "check_head",
    "expand_inputs",
    "replay_checkpoint_name",
]
DEFAULT_CHUNK_ROWS = 262_144
COUNT_WAIT_S = 10.0  # a stopped run waits at most this long for a CSV's row count
HEAD_ROWS = 1_000  # rows of each file check_head reads
MIN_MERGE_CHUNK_ROWS = 16_384  # per file when merging: memory is about 1.5 chunks per file


@dataclass
class FileStats:
    """What one input file gave: data rows read, bad rows, rows repeating another's."""

    path: str
    rows: int = 0
    bad: int = 0
    duplicate: int = 0


class ReplaySource(TickSource):
    """Stream the rows of CSV/Parquet files as tick frames (trades, quotes) or bar-input frames.

    ``kind`` is detected from the first file's header or schema unless given; later files must fit
    it. ``speed=None`` replays as fast as possible, ``speed=X`` at X times the recorded pace.
    ``with_origin`` adds an ``origin`` column, the row's file as an index into ``paths``, so that
    the bar engine can count late ticks per file.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        kind: TickKind | None = None,
        symbol: str | None = None,
        ts_unit: TsUnit = "auto",
        speed: float | None = None,
        on_bad_row: OnBadRow = "fail",
        on_duplicate: OnDuplicate = "fail",
        with_origin: bool = False,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
        provider: str = "replay",
        layout: Layout | None = None,
        ts_format: str | None = None,
        tz: str = "UTC",
        resumable: bool = False,
    ) -> None:
        _check_options(ts_unit, speed, on_bad_row, chunk_rows)
        if on_duplicate not in ("fail", "skip"):
            raise UsageError(f"on_duplicate must be fail or skip, not {on_duplicate!r}")
        self.paths = [Path(p) for p in paths]
        if not self.paths:
            raise BadInputError("no input file given")
        for path in self.paths:
            _check_file(path)
        self.layout = layout
        kind = kind or (layout.kind if layout is not None else None)
        first = self._map(self.paths[0], kind, symbol)
        super().__init__(provider, first.kind)
        self.symbol = symbol
        self.ts_unit: TsUnit = ts_unit
        self.speed = speed
        # At the recorded pace a replay can go quiet as its data does: closing frames go in at once.
        self.continuous = speed is None
        self.on_bad_row: OnBadRow = on_bad_row
        self.on_duplicate: OnDuplicate = on_duplicate
        self.with_origin = with_origin
        self.chunk_rows = chunk_rows
        self.files = [FileStats(str(path)) for path in self.paths]
        self.ts_format = ts_format
        self.tz = tz
        self._first_map = first
        self._open: Iterator[pl.DataFrame] | None = None
        self._counts = RowCounts(self.paths, layout)
        self._blank = [0] * len(self.paths)  # blank CSV lines passed over, per file
        self._ended = [False] * len(self.paths)  # read to its end
        if resumable:
            self.checkpoint_name = replay_checkpoint_name(self.paths)
        self.resumed_rows = 0  # rows an earlier run committed (a checkpoint), skipped here
        self.position = 0  # rows of the merged stream taken, those skipped by resuming included
        self._skipped = 0  # of resumed_rows, skipped so far

    transactional = True  # files can be read again: a run commits once, or not at all
    finite = True

    def describe(self) -> SourceInfo:
        """Return the kind and the files, in the order they are read."""
        info = super().describe()
        where = str(self.paths[0]) if len(self.paths) == 1 else f"{len(self.paths)} files"
        info["label"] = f"replay {self.kind} from {where}"
        info["files"] = [asdict(stat) for stat in self.files]  # rows, bad, duplicate per file
        if self.checkpoint_name is not None:
            info["checkpoint"] = self.checkpoint_name
            info["resumed_rows"] = self.resumed_rows
            if self.resumed_rows:
                info["label"] += (
                    f", resumed: {self.resumed_rows:,} rows committed by an earlier run skipped"
                )
        return info

    def checkpoint_layout(self) -> dict[str, Any]:
        """Return the input files (path, size, mtime, a digest of both ends) and the options
        that shape the stream."""
        inputs = []
        for path in self.paths:
            stat = path.stat()
            inputs.append(
                {
                    "path": str(path.resolve()),
                    "bytes": stat.st_size,
                    "mtime_ns": stat.st_mtime_ns,
                    "ends_sha256": _ends_digest(path),
                }
            )
        options = {
            "kind": self.kind,
            "symbol": self.symbol,
            "ts_unit": self.ts_unit,
            "ts_format": self.ts_format,
            "tz": self.tz,
            "on_bad_row": self.on_bad_row,
            "on_duplicate": self.on_duplicate,
            "columns": None if self.layout is None else list(self.layout.names),
            "chunk_rows": self.chunk_rows,
        }
        return {"inputs": inputs, "read": options}

    def resume_after(self, position: int) -> None:
        """Skip the first ``position`` rows of the merged stream (committed by an earlier run)."""
        self.resumed_rows = position
        self.position = position

    def total_rows(self) -> int | None:
        """Rows of all the files (see ``row_count``); None while a CSV's count is unknown.

        A file read to its end counts what it gave; otherwise Parquet's metadata or a CSV's
        counted lines, less the blank lines met so far (they are passed over, not rows).
        """
        total = 0
        for number, stat in enumerate(self.files):
            counted = self._counts.rows(number)
            if self._ended[number]:
                total += stat.rows
            elif counted is None:
                return None
            else:
                total += counted - self._blank[number]
        return total

    def read_fraction(self, taken: int) -> float | None:
        """Share of the input's rows taken, those an earlier run committed (resumed) included."""
        return super().read_fraction(taken + self._skipped)

    def rows_not_read(self, taken: int) -> int | None:
        """Rows neither taken by this run nor skipped as committed by an earlier one.

        Waits a few seconds for a CSV's count still running: a stop asks for it once.
        """
        self._counts.wait(COUNT_WAIT_S)
        return super().rows_not_read(taken + self._skipped)

    async def batches(self) -> AsyncIterator[pl.DataFrame]:
        """Yield cleaned frames file by file; reading and cleaning run off the event loop."""
        pacer = Pacer(self.speed) if self.speed is not None else None
        frames = self._frames()
        self._open = frames
        self._skipped, self.position = 0, self.resumed_rows
        try:
            while (frame := await asyncio.to_thread(next, frames, None)) is not None:
                frame = self._past_resumed(frame)
                if frame.height == 0:
                    continue
                if pacer is None:
                    self.position += frame.height
                    yield frame
                    continue
                async for piece in pacer.pace(frame):
                    self.position += piece.height
                    yield piece
        finally:
            _close_quietly(frames)
            self._open = None

    def _past_resumed(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Drop the rows of ``frame`` an earlier run committed (``resume_after``)."""
        left = self.resumed_rows - self._skipped
        if left <= 0:
            return frame
        skip = min(left, frame.height)
        self._skipped += skip
        return frame.slice(skip)

    async def close(self) -> None:
        """Stop reading; safe to call more than once."""
        if self._open is not None:
            _close_quietly(self._open)
            self._open = None

    def _frames(self) -> Iterator[pl.DataFrame]:
        for stat in self.files:
            stat.rows = stat.bad = stat.duplicate = 0
        self._blank = [0] * len(self.paths)
        self._ended = [False] * len(self.paths)
        check = DuplicateCheck(self.kind)
        if len(self.paths) == 1:
            stream = self._file_frames(0, self.chunk_rows)
        else:
            rows = self.chunk_rows
            if rows >= MIN_MERGE_CHUNK_ROWS:
                rows = max(MIN_MERGE_CHUNK_ROWS, rows // len(self.paths))
            stream = merge_by_time([self._file_frames(i, rows) for i in range(len(self.paths))])
        # Trades repeated inside one file are real fills: one trade file has nothing to compare.
        compare = self.kind == "bars" or len(self.paths) > 1
        for frame in stream:
            kept = self._drop_duplicates(check, frame) if compare else frame
            if kept.height:
                yield (
                    kept.drop(ROW_COLUMN)
                    if self.with_origin
                    else kept.drop(ROW_COLUMN, FILE_COLUMN)
                )

    def _file_frames(self, number: int, chunk_rows: int) -> Iterator[pl.DataFrame]:
        path = self.paths[number]
        cmap = self._first_map if number == 0 else self._map(path, self.kind, self.symbol)

        def malformed(rows: int) -> None:
            self.count_bad("malformed row", rows)
            self.files[number].rows += rows
            self.files[number].bad += rows

        on_malformed = None if self.on_bad_row == "fail" else malformed
        for chunk in read_chunks(path, cmap.index, chunk_rows, on_malformed, self.layout):
            frame = self._accept(path, cmap, chunk, number)
            if not frame.is_empty():
                yield frame
        self._ended[number] = True

    def _drop_duplicates(self, check: DuplicateCheck, frame: pl.DataFrame) -> pl.DataFrame:
        kept, repeats = check.split(frame)
        if repeats.height == 0:
            return kept
        bars = self.kind == "bars"
        if (self.on_bad_row if bars else self.on_duplicate) == "fail":
            raise self._duplicate_error(check, repeats)
        self.count_bad("duplicate bar" if bars else "duplicate row", repeats.height)
        per_file = repeats.get_column(FILE_COLUMN).value_counts()
        for number, rows in per_file.iter_rows():
            stat = self.files[number]
            if bars:
                stat.bad += rows
            else:
                stat.duplicate += rows
        return kept

    def _duplicate_error(self, check: DuplicateCheck, repeats: pl.DataFrame) -> BadInputError:
        dup = check.first(repeats)
        first_path, first_row = self.paths[dup.first[0]], dup.first[1]
        when = ns_to_datetime(dup.ts_ns).isoformat().replace("+00:00", "Z")
        if self.kind == "bars":
            what = f"duplicate bar ({dup.symbol} at {when}), also in {first_path} row {first_row}"
        else:
            what = (
                f"duplicate {self.kind[:-1]} ({dup.symbol} at {when}, every field equal), also in"
                f" {first_path} row {first_row}; --on-duplicate skip drops and counts repeats"
            )
        return BadInputError(what, path=str(self.paths[dup.again[0]]), row=dup.again[1])

    def _accept(self, path: Path, cmap: ColumnMap, chunk: Chunk, number: int) -> pl.DataFrame:
        cleaned = clean(
            chunk.batch,
            cmap.kind,
            symbol=self.symbol,
            ts_unit=self.ts_unit,
            blank=chunk.blank,
            tz=self.tz,
            ts_format=self.ts_format,
        )
        code = cleaned.code
        frame = cleaned.frame.with_columns(
            pl.lit(number, pl.UInt32).alias(FILE_COLUMN),
            pl.int_range(chunk.first_row, chunk.first_row + pl.len()).alias(ROW_COLUMN),
        )
        stat = self.files[number]
        if code.max() == 0:
            stat.rows += frame.height
            return frame
        blank = int((code == BLANK).sum())
        self._blank[number] += blank
        stat.rows += frame.height - blank
        bad = (code > 0) & (code != BLANK)
        if bad.any():
            if self.on_bad_row == "fail":
                raise _bad_row(path, cmap, chunk, int(bad.arg_max() or 0), code)
            for value, rows in code.filter(bad).value_counts().iter_rows():
                self.count_bad(CHECKS[cmap.kind][value - 1].reason, rows)
                stat.bad += rows
        return frame.filter(code == 0)

    def _map(self, path: Path, kind: TickKind | None, symbol: str | None) -> ColumnMap:
        return _column_map(path, kind, symbol, self.layout)


def check_head(
    paths: Sequence[Path],
    *,
    kind: TickKind | None = None,
    symbol: str | None = None,
    ts_unit: TsUnit = "auto",
    on_bad_row: OnBadRow = "fail",
    layout: Layout | None = None,
    ts_format: str | None = None,
    tz: str = "UTC",
    rows: int = HEAD_ROWS,
) -> None:
    """Raise the ``BadInputError`` a replay of ``paths`` would stop at in a file's first rows.

    Reads each file's header and at most ``rows`` rows with the reader and checks of
    ``ReplaySource`` (no row count, no reading further): ``mdp serve`` fails a run whose file is
    refused this early without starting its process, with the same one-line error.
    """
    kind = kind or (layout.kind if layout is not None else None)
    for path in paths:
        _check_file(path)
        cmap = _column_map(path, kind, symbol, layout)
        kind = cmap.kind  # later files must fit the first one's kind
        skip = None if on_bad_row == "fail" else (lambda _rows: None)
        chunks = read_chunks(path, cmap.index, rows, skip, layout)
        try:
            chunk = next(chunks, None)
        finally:
            chunks.close()
        if chunk is None or on_bad_row != "fail":
            continue
        code = clean(
            chunk.batch,
            cmap.kind,
            symbol=symbol,
            ts_unit=ts_unit,
            blank=chunk.blank,
            tz=tz,
            ts_format=ts_format,
        ).code
        bad = (code > 0) & (code != BLANK)
        if bad.any():
            raise _bad_row(path, cmap, chunk, int(bad.arg_max() or 0), code)


def _column_map(
    path: Path, kind: TickKind | None, symbol: str | None, layout: Layout | None
) -> ColumnMap:
    cmap = map_columns(column_names(path, layout), kind, str(path))
    if symbol is None and "symbol" not in cmap.index:
        raise BadInputError(
            "no symbol column (symbol/ticker/sym/instrument): name the instrument with"
            " --symbol, e.g. --symbol ES",
            path=str(path),
        )
    return cmap


def replay_checkpoint_name(paths: Sequence[Path]) -> str:
    """Return the checkpoint name of a replay of ``paths``: ``replay:`` and a hash of their
    resolved paths, in the order read (so the same files named another way share it)."""
    joined = "\n".join(str(Path(path).resolve()) for path in paths)
    return "replay:" + hashlib.sha256(joined.encode()).hexdigest()[:16]


def _bad_row(path: Path, cmap: ColumnMap, chunk: Chunk, idx: int, code: pl.Series) -> BadInputError:
    check = CHECKS[cmap.kind][int(code[idx]) - 1]
    names = chunk.batch.schema.names
    value = chunk.batch.column(check.field)[idx] if check.field in names else None
    return BadInputError(
        f"{check.reason} ({_shown(value)})",
        path=str(path),
        row=chunk.first_row + idx,
        field=cmap.name(check.field),
    )


def _shown(value: pa.Scalar | None, limit: int = 60) -> str:
    """Return a bad value as the error shows it: its repr, cut to ``limit`` characters."""
    if value is None or not value.is_valid:
        return "empty"
    try:
        text = repr(value.as_py())
    except (ValueError, OverflowError):  # a time beyond year 9999: show its raw number
        unit = getattr(value.type, "unit", "days")
        text = f"{value.cast(pa.int64()).as_py()} {unit} since 1970"
    return text if len(text) <= limit else f"{text[: limit - 3]}... ({len(text):,} characters)"


def _close_quietly(frames: Iterator[pl.DataFrame]) -> None:
    close = getattr(frames, "close", None)
    try:
        if close is not None:
            close()
    except ValueError:  # still running in a worker thread; it finishes that chunk and is dropped
        pass


def _check_file(path: Path) -> None:
    if not path.exists():
        raise BadInputError("file not found", path=str(path))
    if not path.is_file():
        raise BadInputError("not a file", path=str(path))
    if not os.access(path, os.R_OK):
        raise BadInputError("file not readable", path=str(path))
    file_format(path)


def _check_options(ts_unit: str, speed: float | None, on_bad_row: str, chunk_rows: int) -> None:
    if ts_unit != "auto" and ts_unit not in UNIT_NS:
        raise UsageError(f"ts_unit must be auto, s, ms, us or ns, not {ts_unit!r}")
    if speed is not None and not speed > 0:
        raise UsageError(f"speed must be > 0, not {speed}")
    if on_bad_row not in ("fail", "skip"):
        raise UsageError(f"on_bad_row must be fail or skip, not {on_bad_row!r}")
    if chunk_rows < 1:
        raise UsageError(f"chunk_rows must be >= 1, not {chunk_rows}")


ENDS_BYTES = 65_536


def _ends_digest(path: Path) -> str:
    """Digest the first and last 64 KiB: a file replaced by one of the same size and mtime
    (``cp -p``, ``rsync -t``) is told apart, without reading a large file whole."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        digest.update(file.read(ENDS_BYTES))
        size = file.seek(0, os.SEEK_END)
        if size > ENDS_BYTES:
            file.seek(max(ENDS_BYTES, size - ENDS_BYTES))
            digest.update(file.read(ENDS_BYTES))
    return digest.hexdigest()[:16]
