"""The Core contract suite's fixtures: the project's real classes, and Core capabilities.

Every test here is marked ``contracts`` and runs against whichever Core is installed. Project
classes are imported from the package, never re-implemented here; a class that cannot be
imported skips its tests with the module named (and fails them under ``CI=true``).

What the tooling reads from the JUnit report besides pass/fail (``contracts.junit``):

- a skip whose reason starts with ``not applicable:`` (``skip_not_applicable``) means Core lacks
  a capability; any other skip (a service down, a class missing) makes the run incomplete;
- ``notice(...)`` records a testsuite property ``mdp.notice`` (a Core defect fixed, a change
  worth a look); a failing test records ``mdp.failure`` with the contract and Core symbols its
  ``core_contract`` marker names.

Tests run in contract order (install, schemas, wire layout, protocols, then behaviour), so the
first failure reported is the most basic contract that broke.

Core's release waits for this suite, so it answers in seconds whatever Core does: every test has
a timeout (``TEST_TIMEOUT_S``, pytest-timeout; ``--timeout N`` sets another), and the first test
that runs past it ends the run (as a failure), so one edit of Core that makes everything wait
costs one timeout, not one per test.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from market_data_contracts.junit import FAILURE_PROPERTY, NOT_APPLICABLE, NOTICE_PROPERTY

from .capabilities import CAPS, CoreCapabilities

IN_CI = os.environ.get("CI", "").lower() == "true"
HERE = Path(__file__).parent
# Each test takes well under a second (the slowest, the first to import, about 6 s); a minute,
# ten times that on a loaded machine, is a hang.
TEST_TIMEOUT_S = 60.0
_TIMED_OUT = "from pytest-timeout"  # in the failure pytest-timeout reports
_RECORDER = pytest.StashKey[Callable[[str, object], None]]()
ORDER = (
    "test_core_install",
    "test_schema_snapshots",
    "test_wire_layout",
    "test_protocol_conformance",
    "test_wire_format",
    "test_feedback_flow",
    "test_core_defects",
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "core_contract(name, *symbols): the contract and Core symbols a test checks"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    given = config.getoption("timeout", None)  # --timeout on the command line wins
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.contracts)
            if given is None and item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(TEST_TIMEOUT_S))
    items.sort(key=_rank)


def _rank(item: pytest.Item) -> int:
    path = Path(str(item.fspath))
    if HERE not in path.parents or path.stem not in ORDER:
        return -1  # not ours (or a new module): keep it where pytest put it, first
    return ORDER.index(path.stem)


def skip_not_applicable(reason: str) -> NoReturn:
    """Skip because the installed Core lacks a capability: the run stays complete."""
    pytest.skip(f"{NOT_APPLICABLE}{reason}")


@pytest.fixture(scope="session", autouse=True)
def _suite_properties(
    pytestconfig: pytest.Config, record_testsuite_property: Callable[[str, object], None]
) -> None:
    pytestconfig.stash[_RECORDER] = record_testsuite_property


def _record(config: pytest.Config, name: str, data: dict[str, Any]) -> None:
    recorder = config.stash.get(_RECORDER, None)
    if recorder is not None:
        recorder(name, json.dumps(data, sort_keys=True))


@pytest.fixture
def notice(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record a notice: ``notice(kind, message, workaround=None)`` (see ``verdict.Notice``)."""

    def record(kind: str, message: str, workaround: str | None = None) -> None:
        data = {"kind": kind, "message": message, "test_id": request.node.nodeid}
        _record(request.config, NOTICE_PROPERTY, {**data, "workaround": workaround})

    return record


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and HERE in Path(str(item.fspath)).parents:
        marker = item.get_closest_marker("core_contract")
        name = str(marker.args[0]) if marker and marker.args else Path(str(item.fspath)).stem
        symbols = [str(s) for s in marker.args[1:]] if marker else []
        data = {"test_id": item.nodeid, "contract": name, "symbols": symbols}
        _record(item.config, FAILURE_PROPERTY, data)
        if _TIMED_OUT in str(report.longrepr):
            # What made this test wait would make the next ones wait too: stop here, failed.
            item.session.shouldfail = f"{item.nodeid} ran past its timeout"
    return report


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
    replay = project_attr("sources.replay.source", "ReplaySource")
    filtered = project_attr("serve.filters", "FilteredSource")
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
        # The replay API's filters: a source wrapping another.
        "filtered": lambda: filtered(replay([ticks]), symbols=["AAA"], start_ns=None, end_ns=None),
    }
