"""Bar stores chosen by URL, and the bounded write queue in front of them.

sink = open_sink("sqlite:///mdp.db")            # or postgresql://user@host/db
queue = WriteQueue(sink, capacity_rows=..., batch_rows=..., batch_interval_s=..., retry=...)
await queue.start(); await queue.put(bars); report = await queue.close()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .urls import SUPPORTED_SCHEMES, parse_sink_url, redact_url

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
    "WriteQueue",
    "WriteReport",
    "open_sink",
    "read_bars",
    "redact_url",
]


def open_sink(url: str, *, transactional: bool = False) -> BarSink:
    """Build the sink a URL names; ``await sink.open()`` (or ``WriteQueue.start``) connects.

    Raise ``UsageError`` for an unknown scheme or a missing driver extra.
    """
    target = parse_sink_url(url)
    if target.backend == "sqlite":
        from .sqlite import SqliteSink

        return SqliteSink(target.location, transactional=transactional)
    if target.backend == "memory":
        from .memory import MemorySink

        return MemorySink(target.location, transactional=transactional)
    from .postgres import PostgresSink

    return PostgresSink(target.location, transactional=transactional)


def read_bars(url: str) -> pl.DataFrame:
    """Read every stored bar as a ``frames.BAR_SCHEMA`` frame, sorted by symbol, resolution, ts."""
    target = parse_sink_url(url)
    if target.backend == "sqlite":
        from .sqlite import read_sqlite

        return read_sqlite(target.location)
    if target.backend == "memory":
        from .memory import read_memory

        return read_memory(target.location)
    from .postgres import read_postgres

    return read_postgres(target.location)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
