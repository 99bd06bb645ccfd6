"""Build real verification records for tests (the project's own classes, not stand-ins)."""

from __future__ import annotations

from market_data_contracts.record import CoreOrigin, VerificationRecord
from market_data_contracts.verdict import ContractResult, Counts, Failure, Notice, Verdict


def make_record(
    repo: str = "acme/pipeline",
    commit: str = "a" * 40,
    core: str = "1.4.61",
    verdict: Verdict = Verdict.COMPATIBLE,
    *,
    python: str = "3.11",
    finished_at: str = "2026-12-01T10:00:00Z",
    correlation_id: str = "corr-1",
    run_url: str | None = "https://github.com/acme/pipeline/actions/runs/1",
) -> VerificationRecord:
    failed = 1 if verdict is Verdict.INCOMPATIBLE else 0
    first = Failure("test_wire_format.py::test_round_trip", "schema_id changed") if failed else None
    notices = (
        (Notice("defect-fixed", "Core now sends XACK", workaround="bus/redis_streams.py"),)
        if verdict is Verdict.COMPATIBLE_WITH_NOTICES
        else ()
    )
    result = ContractResult(
        verdict=verdict,
        core_requested=core,
        core_version=core,
        core_source="index",
        python=python,
        counts=Counts(passed=90, failed=failed, xfailed=6),
        first_failure=first,
        notices=notices,
        reason=None if verdict is Verdict.COMPATIBLE else f"{verdict.label} reason",
    )
    return VerificationRecord(
        repo=repo,
        commit=commit,
        result=result,
        origin=CoreOrigin("index"),
        correlation_id=correlation_id,
        run_url=run_url,
        started_at=finished_at,
        finished_at=finished_at,
    )
