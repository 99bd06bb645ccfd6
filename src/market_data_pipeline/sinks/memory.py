"""In-process sink (``memory://NAME``): bars kept in this Python process, read back as a frame.

For notebooks and tests: ``run(sink="memory://demo")`` then ``read_bars("memory://demo")``. The
same idempotent upsert as the other stores (key symbol, resolution, ts); a transactional sink
publishes its writes only at ``close(commit=True)``. Stores live until ``forget`` or the end of
the process.
"""

from __future__ import annotations

import threading

import polars as pl

from .. import frames
from .base import BarSink

KEY = frames.BAR_KEY
_STORES: dict[str, pl.DataFrame] = {}
_LOCK = threading.Lock()  # each sink writes on its own thread; readers may be anywhere


class MemorySink(BarSink):
    """Upsert bars into the process-wide store ``name``."""

    scheme = "memory"

    def __init__(self, name: str, *, transactional: bool = False) -> None:
        super().__init__(transactional=transactional)
        self.name = name
        self._pending = frames.empty_bars()

    def _open_sync(self) -> None:
        with _LOCK:
            _STORES.setdefault(self.name, frames.empty_bars())

    def _upsert_sync(self, bars: pl.DataFrame) -> None:
        bars = bars.select(list(frames.BAR_SCHEMA))
        if self.transactional:
            self._pending = _upsert(self._pending, bars)
            return
        with _LOCK:
            _STORES[self.name] = _upsert(_STORES.get(self.name, frames.empty_bars()), bars)

    def _finish_sync(self, commit: bool) -> None:
        if self.transactional and commit:
            with _LOCK:
                current = _STORES.get(self.name, frames.empty_bars())
                _STORES[self.name] = _upsert(current, self._pending)
        self._pending = frames.empty_bars()

    def describe(self) -> str:
        """Return ``memory://NAME``."""
        return f"memory://{self.name}"


def read_memory(name: str) -> pl.DataFrame:
    """Return the bars stored under ``name`` (``BAR_SCHEMA``, sorted; empty if none)."""
    with _LOCK:
        stored = _STORES.get(name)
    return frames.empty_bars() if stored is None else stored.sort(KEY)


def forget(name: str) -> None:
    """Drop the store ``name`` (a later write starts it again, empty)."""
    with _LOCK:
        _STORES.pop(name, None)


def _upsert(current: pl.DataFrame, bars: pl.DataFrame) -> pl.DataFrame:
    # Later rows win, as an upsert into a table keyed by (symbol, resolution, ts) does.
    both = pl.concat([current, bars], how="vertical_relaxed")
    return both.unique(subset=KEY, keep="last", maintain_order=True)
