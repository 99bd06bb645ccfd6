"""The sink interface: idempotent bar upserts into a store, also usable as a Core ``Sink``.

Drivers here are synchronous (sqlite3, psycopg); each sink owns one worker thread so that a slow
store never blocks the event loop, and every driver call for one sink happens on that thread.
Subclasses implement the ``_sync`` methods; the async methods are the public surface.

Table ``bars`` (or another, ``--table``; primary key symbol, resolution, ts): symbol, resolution,
ts (window start, UTC), open, high, low, close, volume, vwap, trades (``schema.COLUMNS``, which
also says how a table of an older version is brought up to date). Writing the same bar twice
leaves one row. The SQL stores build their statements' column lists with ``column_list``
and ``update_set`` from those names, so the table's columns are written down once.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl

from .. import frames
from ..errors import SinkError, SinkRefusedError, SinkSetupError

if TYPE_CHECKING:
    from ..core import Bar

T = TypeVar("T")


def column_list(columns: Sequence[str], prefix: str = "") -> str:
    """Return ``columns`` as an SQL list, each after ``prefix``: ``bars.open, bars.high``."""
    return ", ".join(prefix + name for name in columns)


def update_set(columns: Sequence[str], source: str) -> str:
    """Return the SET list taking ``columns`` from ``source``: ``open = excluded.open, ...``."""
    return ", ".join(f"{name} = {source}.{name}" for name in columns)


class BarSink(ABC):
    """A store for bar frames. ``transactional=True`` commits only at ``close(commit=True)``.

    A transactional sink is what replay runs use: a run that fails on bad input rolls back and
    leaves nothing half-written. A streaming (non-transactional) sink commits every write.
    """

    scheme: str

    def __init__(self, *, transactional: bool = False) -> None:
        self.transactional = transactional
        self.rows_written = 0
        self.rows_committed = 0  # of a transactional sink, by checkpoints
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=type(self).__name__)
        self._closed = False

    # -- what a backend implements (called on the sink's own thread) --------------------------
    @abstractmethod
    def _open_sync(self) -> None:
        """Connect and create the schema if missing."""

    @abstractmethod
    def _upsert_sync(self, bars: pl.DataFrame) -> None:
        """Insert or replace ``bars`` (``frames.BAR_SCHEMA``); commit unless transactional."""

    @abstractmethod
    def _finish_sync(self, commit: bool) -> None:
        """Commit (or roll back) what a transactional sink holds, then disconnect."""

    @abstractmethod
    def describe(self) -> str:
        """Return where this sink writes, without any password (for logs and summaries)."""

    # -- public async surface ------------------------------------------------------------------
    async def _run(self, fn: Any, *args: Any) -> Any:
        if self._closed:
            raise SinkError(f"sink {self.describe()} is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    async def open(self) -> None:
        """Connect and create the bars table if it is missing; a second call does nothing.

        Raise ``SinkSetupError`` (exit 2) for what no retry fixes: nothing is written yet.
        """
        try:
            await self._run(self._open_sync)
        except SinkRefusedError as exc:
            raise SinkSetupError(str(exc)) from None

    async def write_frame(self, bars: pl.DataFrame) -> None:
        """Upsert a bar frame; raise ``SinkError`` on failure (the caller retries)."""
        if bars.height:
            await self._run(self._upsert_sync, bars)
            self.rows_written += bars.height

    async def write(self, items: list[Bar]) -> None:
        """Core ``Sink.write``: upsert Core ``Bar`` models (ts = window end)."""
        resolution_ns = {bar.resolution: _resolution_ns(bar.resolution) for bar in items}
        await self.write_frame(frames.bars_from_core(items, resolution_ns))

    async def flush(self) -> None:  # noqa: B027 - Core hook; writes are already durable
        """Core ``Sink.flush``: every ``write`` is already durable or in the run transaction."""

    async def write_late(self, table: str, rows: pl.DataFrame) -> None:
        """Append late ticks (``late_output.TABLE_COLUMNS``) to ``table``, created if missing;
        in the run transaction of a transactional sink, like the bars."""
        await self._run(self._write_late_sync, table, rows)

    def _write_late_sync(self, table: str, rows: pl.DataFrame) -> None:
        raise SinkError(f"{self.describe()} does not keep late ticks")

    # -- checkpoints (transactional sinks; see checkpoint.py) ----------------------------------
    def _checkpoint_sync(self, row: tuple[Any, ...]) -> None:
        raise SinkError(f"{self.describe()} does not keep checkpoints")

    def _load_checkpoint_sync(self, name: str) -> tuple[Any, ...] | None:
        raise SinkError(f"{self.describe()} does not keep checkpoints")

    async def checkpoint(self, checkpoint: Any) -> None:
        """Store ``checkpoint`` and commit it with every bar written since the last one."""
        await self._run(self._checkpoint_sync, checkpoint.to_row())
        self.rows_committed = self.rows_written

    async def load_checkpoint(self, name: str) -> Any:
        """Return the checkpoint stored under ``name`` (a ``checkpoint.Checkpoint``) or None."""
        from ..checkpoint import Checkpoint

        row = await self._run(self._load_checkpoint_sync, name)
        return None if row is None else Checkpoint.from_row(row)

    async def close(self, commit: bool = True) -> None:
        """Commit (transactional sinks) or roll back, disconnect and stop the worker thread.

        A second call does nothing.
        """
        if self._closed:
            return
        try:
            await self._run(self._finish_sync, commit)
        finally:
            self._closed = True
            self._executor.shutdown(wait=True)


def _resolution_ns(label: str) -> int:
    from ..aggregation.resolution import parse_resolution

    return parse_resolution(label).ns
