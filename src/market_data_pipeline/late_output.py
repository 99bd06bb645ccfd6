"""The late-tick side output (``--late-output``): ticks later than the allowed lateness, kept.

Each row is one late tick (its own columns) with why it was left out (``reason``), the
resolutions whose window it missed (``resolutions``, e.g. ``1s,1m``), the coarsest such window
(``window_start``, ``window_end``) and the watermark it met. Targets:

- ``late.parquet`` / ``late.csv``: a file, written as the run goes and closed at its end. Its
  ``symbol, ts, price, size`` columns make it a trade file: ``mdp run --input late.parquet``
  replays it. A file is not part of a checkpoint: a worker restarted after a crash writes the
  ticks it reads again once more (a new file per run is safest).
- ``table:NAME``: a table in the run's own store (SQLite or PostgreSQL), written on the sink's
  connection: in a checkpointed run it commits with the bars, so a restart neither loses nor
  repeats a row. Times there are integer nanoseconds (``ts_ns``, ``window_ns``, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from .errors import UsageError

TABLE_PREFIX = "table:"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
# Columns of the store table, in order (times as integer ns, exact in both stores).
TABLE_COLUMNS = (
    "symbol",
    "ts_ns",
    "price",
    "size",
    "reason",
    "resolutions",
    "window_ns",
    "window_end_ns",
    "watermark_ns",
)


@dataclass(frozen=True)
class LateTarget:
    """Where late ticks go: a file (``path``, ``format``) or a store table (``table``)."""

    path: Path | None = None
    format: str | None = None
    table: str | None = None

    def describe(self) -> str:
        """Return the target as given on the command line."""
        return f"{TABLE_PREFIX}{self.table}" if self.table else str(self.path)


def parse_late_output(url: str) -> LateTarget:
    """Parse ``--late-output``: ``table:NAME``, or a path ending in .parquet or .csv."""
    if url.startswith(TABLE_PREFIX):
        name = url.removeprefix(TABLE_PREFIX)
        if not _NAME.fullmatch(name) or name.lower() in ("bars", "mdp_checkpoints"):
            raise UsageError(
                f"bad --late-output {url!r}: a table name is letters, digits and _ (not bars)"
            )
        return LateTarget(table=name)
    path = Path(url.removeprefix("file://"))
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise UsageError(
            f"bad --late-output {url!r}: expected a .parquet or .csv file, or table:NAME"
        )
    return LateTarget(path=path, format=suffix[1:])


def table_rows(late: pl.DataFrame) -> pl.DataFrame:
    """Return late ticks (``bars.lateness.LATE_SCHEMA``) as rows of the store table."""
    return late.select(
        "symbol",
        "ts_ns",
        "price",
        "size",
        "reason",
        "resolutions",
        pl.col("window").alias("window_ns"),
        pl.col("window_end").alias("window_end_ns"),
        "watermark_ns",
    )


def file_rows(late: pl.DataFrame) -> pl.DataFrame:
    """Return late ticks as file rows: times as UTC datetimes, ``ts`` first after ``symbol``."""

    def stamp(name: str) -> pl.Expr:
        return pl.from_epoch(pl.col(name), time_unit="ns").dt.replace_time_zone("UTC")

    return late.select(
        "symbol",
        stamp("ts_ns").alias("ts"),
        "price",
        "size",
        "reason",
        "resolutions",
        stamp("window").alias("window_start"),
        stamp("window_end").alias("window_end"),
        stamp("watermark_ns").alias("watermark"),
    )


class LateOutput:
    """Write late ticks to their target as the run goes; ``rows`` counts what was written."""

    def __init__(self, target: LateTarget, sink: Any) -> None:
        self.target = target
        self.rows = 0
        self._sink = sink
        self._writer: Any = None  # pyarrow ParquetWriter, or an open CSV file
        if target.table is not None and sink.scheme not in ("sqlite", "postgresql"):
            raise UsageError(
                f"--late-output {target.describe()} needs a SQLite or PostgreSQL sink, not"
                f" {sink.describe()}; or give a .parquet or .csv file"
            )

    async def write(self, late: pl.DataFrame) -> None:
        """Append ``late`` (``LATE_SCHEMA``) to the target."""
        if late.height == 0:
            return
        if self.target.table is not None:
            await self._sink.write_late(self.target.table, table_rows(late))
        else:
            self._write_file(file_rows(late))
        self.rows += late.height

    def _write_file(self, rows: pl.DataFrame) -> None:
        path = self.target.path
        assert path is not None
        if self.target.format == "parquet":
            import pyarrow.parquet as pq

            table = rows.to_arrow()
            if self._writer is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._writer = pq.ParquetWriter(str(path), table.schema)
            self._writer.write_table(table)
            return
        first = self._writer is None
        if first:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = path.open("w", encoding="utf-8", newline="")
        rows.write_csv(self._writer, include_header=first)
        self._writer.flush()

    def close(self) -> None:
        """Finish a file target (a Parquet file is readable only once closed)."""
        writer, self._writer = self._writer, None
        if writer is None and self.target.path is not None:
            # No late tick: the file still exists (empty), so a correction job finds it.
            from .aggregation.lateness import LATE_SCHEMA

            self._write_file(file_rows(pl.DataFrame(schema=LATE_SCHEMA)))
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def describe(self) -> dict[str, Any]:
        """Return the target and the rows written, for the report."""
        return {"target": self.target.describe(), "rows": self.rows}
