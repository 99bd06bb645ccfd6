"""The conformance kit on the real sibling packages, run inside the peers environment.

``downstream/`` is written as the store's and the IBKR provider's repositories would write it.
Each real package passes some checks and fails others; the outcomes are pinned here, so that a
change on either side (a kit check that got stricter, a sibling release that conforms) shows up.
The reasons are printed with ``-rA``; docs/contracts.md lists them.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from .conftest import DOWNSTREAM, PeerEnv

pytestmark = pytest.mark.redis

STORE_SERVICE = "test_store_kit.TestFeedbackPublisherService"
STORE_BUS = "test_store_kit.TestStoreFeedbackBus"
IBKR = "test_ibkr_kit.TestIBKRProvider"
LEVELS = ("ok", "soft", "hard")
DELIVERY = [f"test_each_level_arrives_as_published[{lv}]" for lv in LEVELS]
DELIVERY += ["test_received_timestamps_are_recent"]
UNREACHABLE = "test_unreachable_upstream_fails_fast_with_connection_failed"

EXPECTED_STORE = {
    # The Pulse publisher has no publish(event): it is not a Core FeedbackPublisher. What it
    # publishes through its own publish_feedback reaches the pipeline intact.
    f"{STORE_SERVICE}::test_is_a_core_feedback_publisher": "failed",
    f"{STORE_SERVICE}::test_members_match_core_signatures": "failed",
    f"{STORE_SERVICE}::test_publish_returns_none": "failed",
    **{f"{STORE_SERVICE}::{name}": "passed" for name in DELIVERY},
    # The store's in-process FeedbackBus has Core's publish(event) signature, but publishing a
    # Core FeedbackEvent raises AttributeError ('utilization'): it only takes the store's subclass.
    f"{STORE_BUS}::test_is_a_core_feedback_publisher": "passed",
    f"{STORE_BUS}::test_members_match_core_signatures": "passed",
    f"{STORE_BUS}::test_publish_returns_none": "failed",
    **{f"{STORE_BUS}::{name}": "failed" for name in DELIVERY},
}
EXPECTED_IBKR = {
    f"{IBKR}::test_is_a_core_market_data_provider": "passed",
    f"{IBKR}::test_members_match_core_signatures": "passed",
    f"{IBKR}::{UNREACHABLE}[stream_quotes]": "passed",
    f"{IBKR}::{UNREACHABLE}[stream_bars]": "passed",
    f"{IBKR}::{UNREACHABLE}[request_historical_bars]": "passed",
    # Not implemented: NotImplementedError instead of Core's ConnectionFailed.
    f"{IBKR}::{UNREACHABLE}[stream_trades]": "failed",
    f"{IBKR}::{UNREACHABLE}[stream_options]": "failed",
    f"{IBKR}::test_close_after_a_failed_connection_is_safe": "passed",
}


def _outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    found: dict[str, tuple[str, str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname') or ''}::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                message = (child.get("message") or "").splitlines()[0][:300]
        found[name] = (outcome, message)
    return found


@pytest.fixture(scope="module")
def kit_results(peer_env: PeerEnv, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    junit = tmp_path_factory.mktemp("kit") / "junit.xml"
    env = {
        "MDP_TEST_REDIS_URL": os.environ.get("MDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"),
        "KIT_NAMESPACE": "mdptest-kit",
    }
    done = peer_env.run(
        "-m",
        "pytest",
        str(DOWNSTREAM),
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={junit}",
        "-o",
        f"rootdir={DOWNSTREAM}",
        env=env,
    )
    if not junit.exists():
        pytest.fail(f"the kit did not run in the peers environment:\n{done.stdout}\n{done.stderr}")
    return _outcomes(junit)


def test_show_what_each_real_package_passes_and_fails(kit_results: dict[str, Any]) -> None:
    lines = [f"{outcome:7} {name}  {message}" for name, (outcome, message) in kit_results.items()]
    print("\n".join(lines))  # shown with -rA or -s: the closing report quotes it
    assert kit_results


def test_market_data_store_outcomes_are_as_pinned(kit_results: dict[str, Any]) -> None:
    actual = {name: outcome for name, (outcome, _) in kit_results.items() if "store" in name}
    assert actual == EXPECTED_STORE


def test_ibkr_provider_connection_failure_outcomes(kit_results: dict[str, Any]) -> None:
    actual = {name: outcome for name, (outcome, _) in kit_results.items() if "ibkr" in name}
    assert actual == EXPECTED_IBKR
