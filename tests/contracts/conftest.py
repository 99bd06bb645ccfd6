"""The Core contract suite's fixtures: the project's real classes, and Core capabilities.

Every test here is marked ``contracts`` and runs against whichever Core is installed. Project
classes are imported from the package, never re-implemented here; a class that cannot be
imported skips its tests with the module named (and fails them under ``CI=true``).
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import pytest

from .capabilities import CAPS, CoreCapabilities

IN_CI = os.environ.get("CI", "").lower() == "true"
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.contracts)


def project_attr(module: str, name: str) -> Any:
    """Return ``market_data_pipeline.<module>.<name>``; skip (fail in CI) when it is missing."""
    try:
        return getattr(importlib.import_module(f"market_data_pipeline.{module}"), name)
    except (ImportError, AttributeError) as exc:
        message = f"market_data_pipeline.{module}.{name} is not available: {exc}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def caps() -> CoreCapabilities:
    """The installed Core's capabilities."""
    return CAPS


@pytest.fixture
def source_factories(tmp_path: Path) -> dict[str, Any]:
    """Build each real source with a few ticks: name -> zero-argument factory."""
    synthetic = project_attr("sources.synthetic", "SyntheticSource")
    replay = project_attr("sources.replay", "ReplaySource")
    ticks = tmp_path / "ticks.csv"
    ticks.write_text(
        "symbol,ts,price,size\n"
        "AAA,2024-01-02T09:30:00Z,10.0,1\n"
        "AAA,2024-01-02T09:30:01Z,10.5,2\n"
        "BBB,2024-01-02T09:30:02Z,20.0,3\n",
        encoding="utf-8",
    )
    return {
        "synthetic": lambda: synthetic(symbols=["AAA", "BBB"], seed=7, ticks=10),
        "replay": lambda: replay([ticks]),
    }
