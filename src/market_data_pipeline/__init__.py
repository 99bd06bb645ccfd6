"""market-data-pipeline: ticks to event-time OHLCV bars, with store backpressure over Core's contracts."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
