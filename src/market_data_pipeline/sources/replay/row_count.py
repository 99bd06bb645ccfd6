"""How many rows each input file holds, known before it is read to its end.

A replay's progress and a stopped replay's ``rows_not_read`` need the input's row count, not its
bytes: a CSV reader reads blocks ahead of the rows it has handed out, so a byte share reaches
100% while a third of the rows are still to come. Parquet keeps its row count in its metadata;
an uncompressed CSV's lines are counted in a background thread (a plain newline count, about as
fast as the disk reads, next to a reader that parses every field), started when a count is first
asked for: it is there within a second or so of the first progress report, and a run nobody
watches (``--json``) that reads its files to the end never reads them twice. A compressed CSV is
not counted ahead (that would decompress it twice): its count is unknown until it is read to
its end.

A line count is a row count for CSV files whose quoted fields hold no line breaks, the same
assumption the row numbers of error messages make.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from ...errors import BadInputError
from .formats import Layout, compression
from .readers import csv_header_lines, file_format, parquet_rows

_BLOCK = 1 << 22


class RowCounts:
    """Rows per file: Parquet's from its metadata, uncompressed CSVs' counted in one thread."""

    def __init__(self, paths: Sequence[Path], layout: Layout | None = None) -> None:
        self._rows: list[int | None] = [None] * len(paths)
        to_count: list[tuple[int, Path]] = []
        for number, path in enumerate(paths):
            if file_format(path) == "parquet":
                self._rows[number] = parquet_rows(path)
            elif compression(path) is None:
                to_count.append((number, path))
        self._thread: threading.Thread | None = None
        if to_count:
            # One thread, file after file: a directory of many CSVs is not read all at once.
            self._thread = threading.Thread(
                target=self._count,
                args=(to_count, layout),
                name="mdp-row-count",
                daemon=True,  # a run that ends first does not wait for it
            )
        self._started = threading.Lock()

    def rows(self, number: int) -> int | None:
        """Data rows of file ``number`` (blank lines included), or None while unknown (the
        first call for a CSV starts its count)."""
        rows = self._rows[number]
        if rows is None:
            self._start()
        return rows

    def wait(self, timeout_s: float) -> None:
        """Give the count (started now if it was not) up to ``timeout_s`` seconds to finish."""
        if self._thread is not None:
            self._start()
            self._thread.join(timeout_s)

    def _start(self) -> None:
        with self._started:
            if self._thread is not None and self._thread.ident is None:
                self._thread.start()

    def _count(self, to_count: list[tuple[int, Path]], layout: Layout | None) -> None:
        for number, path in to_count:
            try:
                self._rows[number] = _data_lines(path, csv_header_lines(path, layout))
            except (OSError, BadInputError):  # the reader reports why; the count stays unknown
                self._rows[number] = None


def _data_lines(path: Path, header_lines: int) -> int | None:
    """Lines of ``path`` after its header (a last line without a line break counts)."""
    lines, last = 0, b"\n"
    with path.open("rb") as file:
        while block := file.read(_BLOCK):
            if lines == 0 and b"\n" not in block and b"\r" in block:
                return None  # lines end in a bare CR: not counted here
            lines += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - header_lines, 0)
