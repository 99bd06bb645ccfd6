"""A replay narrowed to some symbols and an event-time range (``symbols``, ``start``, ``end``).

The replay API accepts the earlier service's filters. Rows outside them are read, never silently
dropped: each is counted with its reason beside the bad rows (``bad_reasons`` in the report,
e.g. ``"not in the requested symbols": 120``), so the run still reconciles tick for tick.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import polars as pl

from ..sources.base import SourceInfo, TickSource

NOT_IN_SYMBOLS = "not in the requested symbols"
BEFORE_START = "before the requested start"
AT_OR_AFTER_END = "at or after the requested end"


def filter_source(filters: dict[str, Any]) -> Callable[[TickSource], TickSource] | None:
    """Return what wraps a run's source in the filters, or None when there are none."""
    symbols = filters.get("symbols")
    start_ns, end_ns = filters.get("start_ns"), filters.get("end_ns")
    if not symbols and start_ns is None and end_ns is None:
        return None
    return lambda source: FilteredSource(source, symbols=symbols, start_ns=start_ns, end_ns=end_ns)


class FilteredSource(TickSource):
    """Delegate to ``inner``; count and leave out rows outside the symbols and time range."""

    def __init__(
        self,
        inner: TickSource,
        *,
        symbols: list[str] | None,
        start_ns: int | None,
        end_ns: int | None,
    ) -> None:
        self.inner = inner
        self.provider = inner.provider
        self.kind = inner.kind
        self.transactional = inner.transactional
        self.continuous = inner.continuous
        self.checkpoint_name = inner.checkpoint_name
        self.symbols = sorted(set(symbols)) if symbols else None
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.filtered: dict[str, int] = {}

    # Rows left out count as "bad" rows with their reason: the runtime's reconciliation and
    # read fraction then include them, and the report names why they are not in a bar.
    @property
    def bad_rows(self) -> int:
        return self.inner.bad_rows + sum(self.filtered.values())

    @bad_rows.setter
    def bad_rows(self, value: int) -> None:
        raise AttributeError("bad_rows of a filtered source is counted, not set")

    @property
    def bad_reasons(self) -> dict[str, int]:
        return {**self.inner.bad_reasons, **{k: v for k, v in self.filtered.items() if v}}

    @bad_reasons.setter
    def bad_reasons(self, value: dict[str, int]) -> None:
        raise AttributeError("bad_reasons of a filtered source is counted, not set")

    @property
    def position(self) -> int:
        """The inner source's position (a checkpointed replay's rows taken)."""
        return int(getattr(self.inner, "position", 0))

    @property
    def base_rate(self) -> float | None:
        return self.inner.base_rate

    def describe(self) -> SourceInfo:
        info = self.inner.describe()
        info["label"] = f"{info.get('label', '')} ({self._filters_text()})"
        return info

    def total_rows(self) -> int | None:
        return self.inner.total_rows()

    def read_fraction(self, taken: int) -> float | None:
        return self.inner.read_fraction(taken)

    def rows_not_read(self, taken: int) -> int | None:
        return self.inner.rows_not_read(taken)

    def checkpoint_layout(self) -> dict[str, Any]:
        # Resuming with other filters would mix two selections: the layout must differ.
        return {
            **self.inner.checkpoint_layout(),
            "filters": {"symbols": self.symbols, "start_ns": self.start_ns, "end_ns": self.end_ns},
        }

    def resume_after(self, position: int) -> None:
        self.inner.resume_after(position)

    async def acknowledge(self, position: int) -> None:
        await self.inner.acknowledge(position)

    async def close(self) -> None:
        await self.inner.close()

    async def batches(self) -> AsyncIterator[pl.DataFrame]:
        async for frame in self.inner.batches():
            kept = self._keep(frame)
            if kept.height:
                yield kept

    def _keep(self, frame: pl.DataFrame) -> pl.DataFrame:
        checks: list[tuple[str, pl.Expr]] = []
        if self.symbols is not None:
            checks.append((NOT_IN_SYMBOLS, pl.col("symbol").is_in(self.symbols)))
        if self.start_ns is not None:
            checks.append((BEFORE_START, pl.col("ts_ns") >= self.start_ns))
        if self.end_ns is not None:
            checks.append((AT_OR_AFTER_END, pl.col("ts_ns") < self.end_ns))
        for reason, keep in checks:
            before = frame.height
            frame = frame.filter(keep)
            self.filtered[reason] = self.filtered.get(reason, 0) + before - frame.height
        return frame

    def _filters_text(self) -> str:
        parts = []
        if self.symbols is not None:
            parts.append("symbols " + ",".join(self.symbols))
        if self.start_ns is not None:
            parts.append(f"from {self.start_ns} ns")
        if self.end_ns is not None:
            parts.append(f"before {self.end_ns} ns")
        return "; ".join(parts)
