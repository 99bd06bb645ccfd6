"""The kit's pytest plugin: ``pytest_plugins = ["market_data_contracts.kit.plugin"]``.

Registers the ``kit`` marker (every base-class test carries it, so ``-m kit`` selects them) and
shared fixtures. It imports Core only when a kit test runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kit: a Core conformance check from market_data_contracts.kit"
    )


@pytest.fixture
def make_feedback_event() -> Callable[..., Any]:
    """Return a factory of valid Core FeedbackEvents (``level``, ``coordinator_id``, ...)."""
    from ..core import FeedbackEvent

    def make(level: str = "soft", **fields: Any) -> Any:
        values: dict[str, Any] = {
            "coordinator_id": "kit-store",
            "queue_size": {"ok": 10, "soft": 75, "hard": 98}[level],
            "capacity": 100,
            "level": level,
            "source": "store",
            "ts": time.time(),
        }
        values.update(fields)
        return FeedbackEvent(**values)

    return make


@pytest.fixture
def make_rate_adjustment() -> Callable[..., Any]:
    """Return a factory of valid Core RateAdjustments (``provider``, ``scale``, ``level``)."""
    from ..core import BackpressureLevel, RateAdjustment

    def make(provider: str, scale: float, level: str) -> Any:
        reason = BackpressureLevel(level)
        return RateAdjustment(provider=provider, scale=scale, reason=reason, ts=time.time())

    return make
