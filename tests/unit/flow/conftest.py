"""Fixtures for the feedback loop: a manual clock and real rate gates."""

from __future__ import annotations

import pytest
from feedback_helpers import ManualClock

from market_data_pipeline.flow.rate_gate import RateGate


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def gates() -> dict[str, RateGate]:
    return {name: RateGate(name, None) for name in ("ibkr", "synthetic")}
