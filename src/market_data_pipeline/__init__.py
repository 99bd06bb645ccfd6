"""market-data-pipeline: ticks to event-time OHLCV bars, slowed by the store's backpressure.

The public API is listed in ``__all__``; names are imported on first use, so ``import
market_data_pipeline`` (and ``mdp --help``) stays fast and does not import Core until needed.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "BadInputError": "errors",
    "BarEngine": "bars.builder",
    "BarSink": "sinks.base",
    "FeedbackBus": "bus.base",
    "FeedbackHandler": "flow.feedback",
    "Pipeline": "runtime",
    "PipelineError": "errors",
    "RateGate": "flow.rate_gate",
    "ReplaySource": "sources.replay",
    "RunReport": "report",
    "RunSettings": "config",
    "ScalePolicy": "flow.feedback",
    "SinkError": "errors",
    "SinkUnavailableError": "errors",
    "SyntheticSource": "sources.synthetic",
    "TickSource": "sources.base",
    "UsageError": "errors",
    "WatermarkMonitor": "flow.watermarks",
    "Watermarks": "flow.watermarks",
    "WriteQueue": "sinks.queue",
    "execute": "runtime",
    "load_settings": "config",
    "open_bus": "bus",
    "open_sink": "sinks",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
