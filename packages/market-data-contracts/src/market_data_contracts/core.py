"""The Core names the kit and the envelope decoder use; importing this imports Core.

Every Core release warns on import (pydantic ``class Config`` deprecations and Core's own
``models.*`` shim); those warnings are silenced here. ``_models`` holds the same model classes
in every release (the top-level ``market_data_core.Bar`` differs in 1.2.31).
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from market_data_core import _models as _core_models
    from market_data_core import errors as _core_errors
    from market_data_core import protocols as _core_protocols
    from market_data_core import telemetry as _core_telemetry

Instrument = _core_models.Instrument
BackpressureLevel = _core_telemetry.BackpressureLevel
FeedbackEvent = _core_telemetry.FeedbackEvent
RateAdjustment = _core_telemetry.RateAdjustment
ConnectionFailed = _core_errors.ConnectionFailed

FeedbackPublisherProtocol = _core_protocols.FeedbackPublisher
RateControllerProtocol = _core_protocols.RateController
MarketDataProviderProtocol = _core_protocols.MarketDataProvider

# Core's Redis bus stamps FeedbackEvents with the class path as schema id
# (``telemetry.backpressure.FeedbackEvent``) while Core's subscriber and docs use
# ``telemetry.FeedbackEvent``: a consumer accepts both.
FEEDBACK_SCHEMA_IDS = frozenset({"telemetry.FeedbackEvent", "telemetry.backpressure.FeedbackEvent"})

__all__ = [
    "FEEDBACK_SCHEMA_IDS",
    "BackpressureLevel",
    "ConnectionFailed",
    "FeedbackEvent",
    "FeedbackPublisherProtocol",
    "Instrument",
    "MarketDataProviderProtocol",
    "RateAdjustment",
    "RateControllerProtocol",
]
