"""Bar stores chosen by URL, and the bounded write queue in front of them.

sink = open_sink("sqlite:///mdp.db")            # or postgresql://user@host/db
queue = WriteQueue(sink, capacity_rows=..., batch_rows=..., batch_interval_s=..., retry=...)
await queue.start(); await queue.put(bars); report = await queue.close()
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from ..errors import SinkRefusedError, SinkSetupError
from ..urls import redact_url
from .schema import BarTable, Selection, parse_table
from .urls import SUPPORTED_SCHEMES, parse_sink_url

if TYPE_CHECKING:
    import polars as pl

    from .base import BarSink
    from .memory import MemorySink
    from .queue import DepthObserver, RetryPolicy, WriteQueue, WriteReport

# Imported on first use: the CLI checks sink URLs (``urls``) before polars is loaded.
_LAZY = {
    "BarSink": "base",
    "MemorySink": "memory",
    "DepthObserver": "queue",
    "RetryPolicy": "queue",
    "WriteQueue": "queue",
    "WriteReport": "queue",
}

__all__ = [
    "SUPPORTED_SCHEMES",
    "BarSink",
    "DepthObserver",
    "MemorySink",
    "RetryPolicy",
    "Selection",
    "WriteQueue",
    "WriteReport",
    "open_sink",
    "read_bars",
    "read_selection",
    "redact_url",
]


def open_sink(url: str, *, transactional: bool = False, table: str | None = None) -> BarSink:
    """Build the sink a URL names; ``await sink.open()`` (or ``WriteQueue.start``) connects.

    ``table`` names where bars go (default ``bars``; ``schema.table`` in PostgreSQL). Raise
    ``UsageError`` for an unknown scheme, a bad table name or a missing driver extra.
    """
    target = parse_sink_url(url)
    where = parse_table(table, target.backend)
    if target.backend == "sqlite":
        from .sqlite import SqliteSink

        return SqliteSink(target.location, transactional=transactional, table=where)
    if target.backend == "memory":
        from .memory import MemorySink

        return MemorySink(_memory_name(target.location, where), transactional=transactional)
    from .postgres import PostgresSink

    return PostgresSink(target.location, transactional=transactional, table=where)


def read_bars(url: str, *, table: str | None = None) -> pl.DataFrame:
    """Read every stored bar as a ``frames.BAR_SCHEMA`` frame, sorted by symbol, resolution, ts.

    Raise ``SinkSetupError`` (exit 2) for a store that is not there or cannot be read: no such
    file, database, table or ``memory://`` name, a refused login, a table of another shape.
    """
    target = parse_sink_url(url)
    where = parse_table(table, target.backend)
    try:
        return _read(target.backend, target.location, where)
    except SinkRefusedError as exc:
        raise SinkSetupError(str(exc)) from None


def read_selection(url: str, selection: Selection, *, table: str | None = None) -> pl.DataFrame:
    """Read the bars ``selection`` names as ``read_bars`` does, in time order; the store
    selects them (its key leads with symbol, resolution, ts) rather than the whole table."""
    target = parse_sink_url(url)
    where = parse_table(table, target.backend)
    try:
        return _read(target.backend, target.location, where, selection)
    except SinkRefusedError as exc:
        raise SinkSetupError(str(exc)) from None


def _read(
    backend: str, location: str, table: BarTable, selection: Selection | None = None
) -> pl.DataFrame:
    if backend == "sqlite":
        from .sqlite import read_sqlite

        return read_sqlite(location, table, selection)
    if backend == "memory":
        from .memory import read_memory

        frame = read_memory(_memory_name(location, table))
        return frame if selection is None else _selected(frame, selection)
    from .postgres import read_postgres

    return read_postgres(location, table, selection)


def _selected(frame: pl.DataFrame, selection: Selection) -> pl.DataFrame:
    """``selection`` of a frame in memory (a memory store: no SQL)."""
    import polars as pl

    keep = (pl.col("symbol") == selection.symbol) & (pl.col("resolution") == selection.resolution)
    if selection.start_ns is not None:
        keep &= pl.col("ts_ns") >= selection.start_ns
    if selection.end_ns is not None:
        keep &= pl.col("ts_ns") < selection.end_ns
    chosen = frame.filter(keep).sort("ts_ns")
    return chosen if selection.limit is None else chosen.tail(selection.limit)


def _memory_name(name: str, table: BarTable) -> str:
    # memory://demo with --table es keeps its bars apart, as memory://demo.es
    return name if table == BarTable() else f"{name}.{table.name}"


__getattr__ = lazy_exports(__name__, _LAZY)
