"""The curated public API: every name in ``__all__`` resolves, and nothing else is promised."""

from __future__ import annotations

import subprocess
import sys

import pytest

import market_data_pipeline


def test_all_is_sorted_and_every_name_resolves() -> None:
    names = market_data_pipeline.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(market_data_pipeline, name) is not None, name


def test_unknown_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = market_data_pipeline.no_such_thing  # type: ignore[attr-defined]


def test_importing_the_package_does_not_import_core() -> None:
    code = "import sys, market_data_pipeline; print('market_data_core' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
