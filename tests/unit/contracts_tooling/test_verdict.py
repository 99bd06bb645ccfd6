"""The verdict model: exit codes, combination, decision and the JSON round trip."""

from __future__ import annotations

import json

import pytest

from market_data_contracts.verdict import (
    EXIT_BAD_ARGUMENTS,
    ContractResult,
    Counts,
    Failure,
    Notice,
    Verdict,
    combine,
    decide,
)


def test_exit_codes_are_documented_and_distinct_for_failures() -> None:
    codes = {v: v.exit_code for v in Verdict}
    assert codes[Verdict.COMPATIBLE] == codes[Verdict.COMPATIBLE_WITH_NOTICES] == 0
    failing = [codes[Verdict.INCOMPATIBLE], codes[Verdict.INCOMPLETE], codes[Verdict.ERROR]]
    assert len(set(failing)) == 3
    assert EXIT_BAD_ARGUMENTS not in codes.values()


def test_labels_are_words() -> None:
    assert Verdict.COMPATIBLE_WITH_NOTICES.label == "compatible with notices"
    assert Verdict("compatible_with_notices") is Verdict.COMPATIBLE_WITH_NOTICES


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([], Verdict.ERROR),
        ([Verdict.COMPATIBLE, Verdict.COMPATIBLE_WITH_NOTICES], Verdict.COMPATIBLE_WITH_NOTICES),
        ([Verdict.INCOMPLETE, Verdict.COMPATIBLE], Verdict.INCOMPLETE),
        ([Verdict.ERROR, Verdict.INCOMPLETE], Verdict.ERROR),
        ([Verdict.ERROR, Verdict.INCOMPATIBLE, Verdict.COMPATIBLE], Verdict.INCOMPATIBLE),
    ],
)
def test_combine_takes_the_most_severe(verdicts: list[Verdict], expected: Verdict) -> None:
    assert combine(verdicts) is expected


def test_decide_orders_setup_failure_skip_and_notice() -> None:
    assert decide(Counts(passed=3), setup_error="Python 3.99 is not installed")[0] is Verdict.ERROR
    assert decide(Counts(passed=3, failed=1), suite_error="timed out")[0] is Verdict.INCOMPATIBLE
    assert decide(Counts(passed=3), suite_error="timed out")[0] is Verdict.ERROR
    assert decide(Counts())[0] is Verdict.INCOMPLETE
    assert decide(Counts(passed=3, skipped=2, not_applicable=1))[0] is Verdict.INCOMPLETE
    assert decide(Counts(passed=3, skipped=1, not_applicable=1)) == (Verdict.COMPATIBLE, None)
    notice = Notice("defect-fixed", "Core now sends XACK", workaround="bus.redis ack shim")
    verdict, reason = decide(Counts(passed=3), notices=[notice])
    assert verdict is Verdict.COMPATIBLE_WITH_NOTICES and reason == "1 notice(s)"


def test_result_round_trips_through_json() -> None:
    result = ContractResult(
        verdict=Verdict.INCOMPATIBLE,
        core_requested="latest",
        core_version="1.4.61",
        core_source="index",
        python="3.11",
        counts=Counts(passed=30, failed=1, skipped=2, not_applicable=2),
        first_failure=Failure(
            "test_schema_snapshots::test_schema[FeedbackEvent]",
            "field 'level' removed",
            contract="schema FeedbackEvent",
            symbols=("market_data_core.telemetry.FeedbackEvent",),
            surface_diff=("breaking: FeedbackEvent.level removed",),
        ),
        notices=(Notice("additive", "FeedbackEvent gained optional 'note'"),),
        reason="1 contract test(s) failed",
        duration_s=4.2,
    )
    data = json.loads(json.dumps(result.to_json()))
    assert data["verdict"] == "incompatible" and data["exit_code"] == 1
    assert ContractResult.from_json(data) == result
    assert not result.as_expected
