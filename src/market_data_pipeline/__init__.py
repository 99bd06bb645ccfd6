"""market-data-pipeline: ticks to event-time OHLCV bars, slowed by the store's backpressure."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
