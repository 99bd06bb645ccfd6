"""The one place that imports ``market_data_core`` and smooths over its release differences.

Every other module imports Core names from here. Facts this module relies on (see docs/core.md):

- ``market_data_core._models`` holds the same ``Trade``/``Quote``/``Bar`` in every release; the
  top-level ``market_data_core.Bar`` is a different class in 1.2.31, so it is never used.
- ``market_data_core.__version__`` is stale in most releases; the installed version comes from
  package metadata.
- Every release warns on import (pydantic ``class Config`` deprecations and Core's own
  ``models.*`` shim); those warnings are silenced here, once, and nowhere else.
- ``market_data_core.events`` imports Core's Redis bus, and redis with it (about 0.1 s): the
  codec and envelope (``JsonCodec``, ``EventEnvelope``, ``EventMeta``) load on first use, so a
  run without a Redis bus never imports redis.
- Core's Redis bus stamps FeedbackEvents with the class path as schema id
  (``telemetry.backpressure.FeedbackEvent``) while Core's subscriber and docs use
  ``telemetry.FeedbackEvent``: both are accepted.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from typing import TYPE_CHECKING

from ._lazy import lazy_exports

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from market_data_core import _models as _core_models
    from market_data_core import errors as _core_errors
    from market_data_core import protocols as _core_protocols
    from market_data_core import telemetry as _core_telemetry

if TYPE_CHECKING:
    from market_data_core.events.codecs import JsonCodec
    from market_data_core.events.envelope import EventEnvelope, EventMeta


Trade = _core_models.Trade
Quote = _core_models.Quote
Bar = _core_models.Bar
Instrument = _core_models.Instrument

BackpressureLevel = _core_telemetry.BackpressureLevel
FeedbackEvent = _core_telemetry.FeedbackEvent
RateAdjustment = _core_telemetry.RateAdjustment

SourceProtocol = _core_protocols.Source
SinkProtocol = _core_protocols.Sink
RateControllerProtocol = _core_protocols.RateController
FeedbackPublisherProtocol = _core_protocols.FeedbackPublisher
PipelineRunnerProtocol = _core_protocols.PipelineRunner
# Implemented by providers elsewhere (market-data-ibkr); checked by the conformance kit.
MarketDataProviderProtocol = _core_protocols.MarketDataProvider
ConnectionFailed = _core_errors.ConnectionFailed

CORE_DISTRIBUTION = "market-data-core"

# The schema id we publish with (Core's documented id) and every id accepted on consume.
FEEDBACK_SCHEMA_ID = "telemetry.FeedbackEvent"
FEEDBACK_SCHEMA_IDS = frozenset({"telemetry.FeedbackEvent", "telemetry.backpressure.FeedbackEvent"})
RATE_ADJUSTMENT_SCHEMA_IDS = frozenset(
    {"telemetry.RateAdjustment", "telemetry.backpressure.RateAdjustment"}
)

# Numeric level used by metrics and severity comparisons: higher is more severe.
LEVEL_SEVERITY = {
    BackpressureLevel.ok: 0,
    BackpressureLevel.soft: 1,
    BackpressureLevel.hard: 2,
}


# Names from ``market_data_core.events``, imported on first use (see the module docstring).
__getattr__ = lazy_exports(
    __name__,
    {"EventEnvelope": "envelope", "EventMeta": "envelope", "JsonCodec": "codecs"},
    within="market_data_core.events",
    ignore=(DeprecationWarning,),
)


def core_version() -> str:
    """Return the installed Core version from package metadata (Core's ``__version__`` is stale)."""
    return importlib.metadata.version(CORE_DISTRIBUTION)


__all__ = [
    "CORE_DISTRIBUTION",
    "FEEDBACK_SCHEMA_ID",
    "FEEDBACK_SCHEMA_IDS",
    "LEVEL_SEVERITY",
    "RATE_ADJUSTMENT_SCHEMA_IDS",
    "BackpressureLevel",
    "Bar",
    "ConnectionFailed",
    "EventEnvelope",
    "EventMeta",
    "FeedbackEvent",
    "FeedbackPublisherProtocol",
    "Instrument",
    "JsonCodec",
    "MarketDataProviderProtocol",
    "PipelineRunnerProtocol",
    "Quote",
    "RateAdjustment",
    "RateControllerProtocol",
    "SinkProtocol",
    "SourceProtocol",
    "Trade",
    "core_version",
]
