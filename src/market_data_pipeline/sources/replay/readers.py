"""Stream a CSV or Parquet file in chunks of Arrow record batches, numbering the rows.

CSV files are read with every column as text (empty field = null), so a bad value becomes a bad row
of that chunk instead of failing the whole read; the delimiter (``,``, ``;``, tab or ``|``) is taken
from the header line, and ``.gz``/``.bz2``/``.xz``/``.zst`` files are decompressed on the fly. A
``Layout`` (see ``formats``) names the columns of a header-less file. Row numbers: for CSV
the 1-based line number in the file (the header is line 1; exact unless a quoted field spans
lines); for Parquet the 1-based row index. Blank CSV lines come back as all-null rows so that the
numbering stays exact, and each CSV chunk says which of its lines are blank (every field empty,
e.g. ``,,,,``: a line with any non-empty field, read or not, is data).
"""

from __future__ import annotations

import csv
import io
import lzma
import re
import sys
import zlib
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ...errors import BadInputError
from .formats import (
    COMPRESSED_SUFFIXES,
    Layout,
    input_stream,
    is_header,
    open_binary,
)

FileFormat = Literal["csv", "parquet"]

_CSV_SUFFIXES = {".csv", ".tsv", ".txt"}
_PARQUET_SUFFIXES = {".parquet", ".pq", ".parq"}
_DELIMITERS = (",", ";", "\t", "|")
_MIN_BLOCK = 1 << 16
_MAX_BLOCK = 1 << 21  # larger blocks read no faster and cost memory
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class Chunk:
    """Rows of one file: ``batch`` columns are named by field; row i is number ``first_row + i``.

    ``blank`` (CSV only) marks the lines whose every field, read or not, is empty.
    """

    batch: pa.RecordBatch
    first_row: int
    blank: pa.Array | None = None


def file_format(path: Path) -> FileFormat:
    """Return the format of ``path`` from its suffix (or Parquet magic); raise if it is neither."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    if last in _PARQUET_SUFFIXES:
        return "parquet"
    if last in _CSV_SUFFIXES:
        return "csv"
    if _has_parquet_magic(path):
        return "parquet"
    raise BadInputError(
        "not a CSV or Parquet file (expected .csv, .tsv, .txt or .parquet)", path=str(path)
    )


def column_names(path: Path, layout: Layout | None = None) -> list[str]:
    """Return the column names of a CSV header line or a Parquet schema, reading nothing else.

    With a ``layout`` a CSV file's columns are the layout's names.
    """
    if file_format(path) == "parquet":
        if layout is not None:
            raise BadInputError(
                "--columns and --format name CSV columns, not Parquet", path=str(path)
            )
        with _reading(path, "Parquet"):
            return list(pq.ParquetFile(path).schema_arrow.names)
    return _csv_header(path, layout)[0]


def read_chunks(
    path: Path,
    fields: dict[str, int],
    chunk_rows: int,
    on_malformed: Callable[[int], None] | None,
    layout: Layout | None = None,
) -> Generator[Chunk]:
    """Yield the columns ``fields`` (field -> position) of ``path`` in chunks of <= ``chunk_rows``.

    A CSV line with the wrong number of fields is passed to ``on_malformed`` (its count of such
    lines) and dropped; when ``on_malformed`` is None it raises ``BadInputError`` naming the line.
    """
    if file_format(path) == "parquet":
        chunks = _parquet_chunks(path, fields, chunk_rows)
    else:
        chunks = _csv_chunks(path, fields, chunk_rows, on_malformed, layout)
    for chunk in chunks:
        yield from _split(chunk, chunk_rows)


def _split(chunk: Chunk, chunk_rows: int) -> Iterator[Chunk]:
    for start in range(0, chunk.batch.num_rows, chunk_rows):
        blank = None if chunk.blank is None else chunk.blank.slice(start, chunk_rows)
        piece = chunk.batch.slice(start, chunk_rows)
        yield Chunk(piece, chunk.first_row + start, blank)


def csv_header_lines(path: Path, layout: Layout | None = None) -> int:
    """Return how many lines of a CSV file come before its data (0 or 1)."""
    return _csv_header(path, layout)[3]


def parquet_rows(path: Path) -> int:
    """Return a Parquet file's row count from its metadata (nothing else is read)."""
    with _reading(path, "Parquet"):
        return int(pq.ParquetFile(path).metadata.num_rows)


def _parquet_chunks(path: Path, fields: dict[str, int], chunk_rows: int) -> Iterator[Chunk]:
    with _reading(path, "Parquet"):
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        columns = [names[pos] for pos in fields.values()]
        row = 1
        # One iterator per row group: a single iter_batches over the whole file keeps memory it
        # has read (RSS grew ~150 MB from 5M to 20M rows); per group it stays flat.
        for group in range(parquet.metadata.num_row_groups):
            batches = parquet.iter_batches(
                batch_size=chunk_rows, columns=columns, row_groups=[group]
            )
            for batch in batches:
                arrays = [batch.column(names[pos]) for pos in fields.values()]
                batch_fields = pa.RecordBatch.from_arrays(arrays, names=list(fields))
                yield Chunk(batch_fields, row)
                row += batch.num_rows


def _csv_chunks(
    path: Path,
    fields: dict[str, int],
    chunk_rows: int,
    on_malformed: Callable[[int], None] | None,
    layout: Layout | None,
) -> Iterator[Chunk]:
    names, delimiter, line_bytes, header_lines = _csv_header(path, layout)
    generic = [f"c{i}" for i in range(len(names))]
    wanted = {f"c{pos}": field for field, pos in fields.items()}
    block = min(max(chunk_rows * line_bytes, _MIN_BLOCK), _MAX_BLOCK)

    def malformed(row: Any) -> str:
        assert on_malformed is not None
        on_malformed(1)
        return "skip"

    # Failing at a malformed row needs no Python handler; one would also be called with text
    # Arrow cannot decode (a non-UTF-8 row), which Python reports as an ignored exception.
    handler = None if on_malformed is None else malformed
    with _reading(path, "CSV"), _quiet_undecodable_rows():
        try:
            reader = pacsv.open_csv(
                input_stream(path),
                read_options=pacsv.ReadOptions(
                    skip_rows=header_lines, column_names=generic, block_size=block
                ),
                parse_options=_parse_options(delimiter, handler),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in generic},
                    # Only an empty field is missing: "NA" is a ticker, "nan" a bad value to name.
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                    # Checked per block instead (``_check_utf8``): per value it cost half the read.
                    check_utf8=False,
                ),
            )
            line = header_lines + 1
            for batch in reader:
                _check_utf8(batch)
                arrays = [batch.column(c) for c in wanted]
                chunk = pa.RecordBatch.from_arrays(arrays, names=list(wanted.values()))
                yield Chunk(chunk, line, _all_null(batch))
                line += batch.num_rows
        except pa.ArrowInvalid as exc:
            if "columns, got" in str(exc):
                raise _malformed_error(path, delimiter, len(names), header_lines, exc) from None
            located = _located_error(path, block, exc)
            if located is None:
                raise
            raise located from None


def _check_utf8(batch: pa.RecordBatch) -> None:
    """Raise ``ArrowInvalid`` (as Arrow's own check would) if a text value is not UTF-8.

    Plain ASCII data, the usual CSV, is told by one pass over each column's bytes; anything else
    is validated value by value.
    """
    for column in batch.columns:
        data = column.buffers()[2]
        if data is None or data.size == 0:
            continue
        if int(np.frombuffer(data, np.uint8).max()) >= 0x80:
            try:
                column.validate(full=True)
            except pa.ArrowInvalid as exc:
                raise pa.ArrowInvalid(f"invalid UTF8 data: {exc}") from None


def _all_null(batch: pa.RecordBatch) -> pa.Array:
    """Return, per row, whether every column of ``batch`` is null (an empty CSV field)."""
    blank = pc.is_null(batch.column(0))
    for column in batch.columns[1:]:
        blank = pc.and_(blank, pc.is_null(column))
    return blank


def _parse_options(delimiter: str, handler: Callable[[Any], str] | None) -> pacsv.ParseOptions:
    return pacsv.ParseOptions(
        delimiter=delimiter, ignore_empty_lines=False, invalid_row_handler=handler
    )


def _malformed_error(
    path: Path, delimiter: str, width: int, header_lines: int, exc: Exception
) -> BadInputError:
    """Find the first malformed line again single-threaded (only threaded reads lose the number)."""
    not_utf8 = _located_error(path, 0, ValueError("invalid UTF8"))
    if not_utf8 is not None and not_utf8.row is not None:
        return not_utf8  # Arrow cannot hand a row it cannot decode to Python: name it ourselves
    found: list[int] = []

    def first(row: Any) -> str:
        found.append(row.number)
        return "error"

    try:
        reader = pacsv.open_csv(
            input_stream(path),
            read_options=pacsv.ReadOptions(
                use_threads=False,
                column_names=[f"c{i}" for i in range(width)],
                skip_rows=header_lines,
            ),
            parse_options=_parse_options(delimiter, first),
            convert_options=pacsv.ConvertOptions(
                column_types={f"c{i}": pa.string() for i in range(width)}
            ),
        )
        for _ in reader:
            pass
    except pa.ArrowInvalid:
        pass
    reason = str(exc).splitlines()[0].removeprefix("CSV parse error: ")
    return BadInputError(
        f"malformed row: {reason}", path=str(path), row=found[0] if found else None
    )


@contextmanager
def _quiet_undecodable_rows() -> Iterator[None]:
    """Drop Python's report of a row handler Arrow could not call (the row is not UTF-8).

    The read then fails on that row and ``_malformed_error`` names it; the default hook would
    print a traceback meanwhile.
    """
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        handler = getattr(unraisable.object, "__qualname__", "")
        if isinstance(unraisable.exc_value, UnicodeDecodeError) and "_csv_chunks" in handler:
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def _located_error(path: Path, block: int, exc: Exception) -> BadInputError | None:
    """Name the line behind an Arrow read error that Arrow reports without one.

    Arrow says only "invalid UTF8 data" or "straddles two block boundaries" (a line longer than
    a read block); the line is found again by a plain scan, which costs time on this error path
    only.
    """
    text = str(exc)
    if "invalid UTF8" in text:
        reason, bad = "not UTF-8 text", _not_utf8
    elif "straddl" in text:
        reason, bad = f"line longer than {block:,} bytes", partial(_longer_than, block)
    else:
        return None
    with _reading(path, "CSV"), open_binary(path) as raw:
        for number, line in enumerate(raw, start=1):
            if bad(line):
                return BadInputError(reason, path=str(path), row=number)
    return BadInputError(reason, path=str(path))


def _not_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def _longer_than(limit: int, line: bytes) -> bool:
    return len(line) > limit


def _csv_header(path: Path, layout: Layout | None = None) -> tuple[list[str], str, int, int]:
    """Return the column names, the delimiter, the typical line length and the header lines.

    Without a layout the first line is the header; with one, only when it repeats the names.
    """
    with _reading(path, "CSV"), open_binary(path) as raw:
        head = raw.read(1 << 16)
    if b"\0" in head:
        raise BadInputError("not a text file (it contains NUL bytes)", path=str(path))
    text = head.decode("utf-8-sig", errors="replace")
    first = _LINE_END.split(text, maxsplit=1)[0]
    if not first.strip():
        raise BadInputError("empty file or no header line", path=str(path))
    delimiter = max(_DELIMITERS, key=first.count)
    try:
        names = next(csv.reader(io.StringIO(first), delimiter=delimiter))
    except csv.Error as exc:
        raise BadInputError(f"unreadable header line: {exc}", path=str(path), row=1) from None
    line_bytes = max(len(head) // max(len(_LINE_END.findall(text)), 1), 8)
    if layout is None:
        return [n.strip() for n in names], delimiter, line_bytes, 1
    if len(names) != len(layout.names):
        raise BadInputError(
            f"line 1 has {len(names)} fields but the layout names {len(layout.names)}:"
            f" {','.join(layout.names)}",
            path=str(path),
        )
    return list(layout.names), delimiter, line_bytes, int(is_header(names, layout))


def _has_parquet_magic(path: Path) -> bool:
    with _reading(path, "input"), path.open("rb") as raw:
        return raw.read(4) == b"PAR1"


@contextmanager
def _reading(path: Path, what: str) -> Iterator[None]:
    """Translate OS and Arrow errors while reading ``path`` into ``BadInputError`` naming it."""
    try:
        yield
    except BadInputError:
        raise
    except FileNotFoundError:
        raise BadInputError("file not found", path=str(path)) from None
    except (OSError, pa.ArrowException, EOFError, UnicodeError, zlib.error, lzma.LZMAError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInputError(f"cannot read {what}: {detail}", path=str(path)) from None
