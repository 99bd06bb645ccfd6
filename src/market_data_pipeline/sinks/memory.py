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
from ..errors import SinkSetupError
from .base import BarSink

KEY = frames.BAR_KEY
COMPACT_MIN_ROWS = 100_000  # appended rows below this are never worth a compaction


class _Bars:
    """Bars as appended frames, compacted now and then: later rows win for a repeated key.

    Compacting only once the appended rows outgrow the compacted ones keeps a write amortised
    O(its own size); re-deduplicating the whole store on every write made a 10,000-symbol
    replay quadratic.
    """

    def __init__(self) -> None:
        self._parts: list[pl.DataFrame] = []
        self._compacted_rows = 0
        self._appended_rows = 0

    def append(self, bars: pl.DataFrame) -> None:
        self._parts.append(bars)
        self._appended_rows += bars.height
        if self._appended_rows > max(self._compacted_rows, COMPACT_MIN_ROWS):
            self.compact()

    def extend(self, other: _Bars) -> None:
        for part in other._parts:
            self.append(part)

    def compact(self) -> pl.DataFrame:
        if len(self._parts) != 1 or self._appended_rows:
            both = pl.concat([frames.empty_bars(), *self._parts], how="vertical_relaxed")
            self._parts = [both.unique(subset=KEY, keep="last", maintain_order=True)]
            self._compacted_rows, self._appended_rows = self._parts[0].height, 0
        return self._parts[0]


_STORES: dict[str, _Bars] = {}
_LOCK = threading.Lock()  # each sink writes on its own thread; readers may be anywhere


class MemorySink(BarSink):
    """Upsert bars into the process-wide store ``name``."""

    scheme = "memory"

    def __init__(self, name: str, *, transactional: bool = False) -> None:
        super().__init__(transactional=transactional)
        self.name = name
        self._pending = _Bars()

    def _open_sync(self) -> None:
        with _LOCK:
            _STORES.setdefault(self.name, _Bars())

    def _upsert_sync(self, bars: pl.DataFrame) -> None:
        bars = bars.select(list(frames.BAR_SCHEMA))
        if self.transactional:
            self._pending.append(bars)
            return
        with _LOCK:
            _STORES.setdefault(self.name, _Bars()).append(bars)

    def _finish_sync(self, commit: bool) -> None:
        if self.transactional and commit:
            with _LOCK:
                _STORES.setdefault(self.name, _Bars()).extend(self._pending)
        self._pending = _Bars()

    def describe(self) -> str:
        """Return ``memory://NAME``."""
        return f"memory://{self.name}"


def read_memory(name: str) -> pl.DataFrame:
    """Return the bars stored under ``name`` (``BAR_SCHEMA``, sorted).

    Raise ``SinkSetupError`` when no sink of this process ever opened ``name``.
    """
    with _LOCK:
        stored = _STORES.get(name)
        bars = None if stored is None else stored.compact()
    if bars is None:
        known = ", ".join(f"memory://{key}" for key in sorted(_STORES)) or "none"
        raise SinkSetupError(f"no store memory://{name} in this process (stores: {known})")
    return bars.sort(KEY)


def forget(name: str) -> None:
    """Drop the store ``name`` (a later write starts it again, empty)."""
    with _LOCK:
        _STORES.pop(name, None)
