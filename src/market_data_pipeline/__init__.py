"""market-data-pipeline: ticks to event-time OHLCV bars, slowed by the store's backpressure.

The public API is listed in ``__all__``; names are imported on first use, so ``import
market_data_pipeline`` (and ``mdp --help``) stays fast and does not import Core until needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

if TYPE_CHECKING:  # type checkers see the real names; at run time they load on first use
    from .aggregation.builder import BarEngine
    from .api import bars, read_bars, run
    from .build import Stages
    from .bus import open_bus
    from .bus.base import FeedbackBus
    from .config import RunSettings, load_settings
    from .errors import (
        BadInputError,
        PipelineError,
        SinkError,
        SinkRefusedError,
        SinkSetupError,
        SinkUnavailableError,
        UsageError,
    )
    from .flow.feedback import FeedbackHandler, ScalePolicy
    from .flow.rate_gate import RateGate
    from .flow.watermarks import WatermarkMonitor, Watermarks
    from .lifecycle import Lifecycle
    from .report import RunReport, RunStatus, StopCause
    from .runtime import Pipeline, build_pipeline, execute
    from .sinks import open_sink
    from .sinks.base import BarSink
    from .sinks.memory import MemorySink
    from .sinks.queue import WriteQueue
    from .sources.base import SourceInfo, TickSource
    from .sources.replay.source import ReplaySource
    from .sources.synthetic import SyntheticSource

__version__ = "0.1.0"

_EXPORTS = {
    "BadInputError": "errors",
    "BarEngine": "aggregation.builder",
    "BarSink": "sinks.base",
    "FeedbackBus": "bus.base",
    "FeedbackHandler": "flow.feedback",
    "Lifecycle": "lifecycle",
    "MemorySink": "sinks.memory",
    "Pipeline": "runtime",
    "PipelineError": "errors",
    "RateGate": "flow.rate_gate",
    "ReplaySource": "sources.replay.source",
    "RunReport": "report",
    "RunSettings": "config",
    "RunStatus": "report",
    "ScalePolicy": "flow.feedback",
    "SinkError": "errors",
    "SinkRefusedError": "errors",
    "SinkSetupError": "errors",
    "SinkUnavailableError": "errors",
    "SourceInfo": "sources.base",
    "Stages": "build",
    "StopCause": "report",
    "SyntheticSource": "sources.synthetic",
    "TickSource": "sources.base",
    "UsageError": "errors",
    "WatermarkMonitor": "flow.watermarks",
    "Watermarks": "flow.watermarks",
    "WriteQueue": "sinks.queue",
    "bars": "api",
    "build_pipeline": "runtime",
    "execute": "runtime",
    "load_settings": "config",
    "open_bus": "bus",
    "open_sink": "sinks",
    "read_bars": "api",
    "run": "api",
}

__all__ = [
    "BadInputError",
    "BarEngine",
    "BarSink",
    "FeedbackBus",
    "FeedbackHandler",
    "Lifecycle",
    "MemorySink",
    "Pipeline",
    "PipelineError",
    "RateGate",
    "ReplaySource",
    "RunReport",
    "RunSettings",
    "RunStatus",
    "ScalePolicy",
    "SinkError",
    "SinkRefusedError",
    "SinkSetupError",
    "SinkUnavailableError",
    "SourceInfo",
    "Stages",
    "StopCause",
    "SyntheticSource",
    "TickSource",
    "UsageError",
    "WatermarkMonitor",
    "Watermarks",
    "WriteQueue",
    "__version__",
    "bars",
    "build_pipeline",
    "execute",
    "load_settings",
    "open_bus",
    "open_sink",
    "read_bars",
    "run",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return __all__
