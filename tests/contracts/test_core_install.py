"""Core is installed, its version is inside the range we declare, and every symbol we use exists."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from market_data_contracts.usage import core_symbols, resolve

SRC = Path(__file__).resolve().parents[2] / "src" / "market_data_pipeline"
SYMBOLS = core_symbols(SRC)


def declared_core_requirement() -> Requirement:
    """Return the project's own Core requirement, from the installed package metadata."""
    for line in importlib.metadata.requires("market-data-pipeline") or []:
        requirement = Requirement(line)
        if requirement.name == "market-data-core" and requirement.marker is None:
            return requirement
    raise AssertionError("market-data-pipeline does not declare a market-data-core requirement")


def test_core_imports() -> None:
    import market_data_core

    assert market_data_core.__name__ == "market_data_core"


def test_installed_version_is_inside_the_declared_range() -> None:
    installed = Version(importlib.metadata.version("market-data-core"))
    requirement = declared_core_requirement()
    assert requirement.specifier.contains(installed, prereleases=True), (
        f"market-data-core {installed} is outside the declared range {requirement.specifier}"
    )


def test_version_comes_from_metadata_not_the_stale_dunder() -> None:
    from market_data_pipeline import core

    assert core.core_version() == importlib.metadata.version("market-data-core")


def test_the_source_scan_finds_the_core_boundary() -> None:
    # Guards the scan itself: core.py uses these, so an empty or broken scan fails here.
    expected = {"market_data_core.telemetry:FeedbackEvent", "market_data_core.protocols:Source"}
    assert expected <= set(SYMBOLS)


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_every_core_symbol_the_project_uses_exists(symbol: str) -> None:
    try:
        resolve(symbol)
    except LookupError as exc:
        pytest.fail(f"Core {importlib.metadata.version('market-data-core')}: {exc}")


def test_only_core_py_and_the_contract_tooling_import_core() -> None:
    importers = sorted(
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if re.search(r"^\s*(from|import) market_data_core", path.read_text(), re.MULTILINE)
    )
    assert importers == ["core.py"], f"Core imported outside core.py: {importers}"
