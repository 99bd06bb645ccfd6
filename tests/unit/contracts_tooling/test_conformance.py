"""The member-by-member protocol check sees keyword-only parameters, defaults and return types."""

from __future__ import annotations

from typing import Any, Protocol

import pytest

from market_data_contracts.conformance import conformance_problems


class Gate:
    async def apply(self, adj: Any) -> None:
        return None


class Sink:
    async def write(self, items: list[Any]) -> None:
        return None


class Runner:
    async def stop(self, drain: bool = True) -> None:
        return None


class CoreGate(Protocol):
    async def apply(self, adj: Any) -> None: ...


class CoreGateStrict(Protocol):
    async def apply(self, adj: Any, *, strict: bool) -> None: ...


class CoreGateBool(Protocol):
    async def apply(self, adj: Any) -> bool: ...


class CoreSinkTimeout(Protocol):
    async def write(self, items: list[Any], *, timeout: float | None = None) -> None: ...  # noqa: ASYNC109 (a Core signature)


class CoreRunnerNoDrain(Protocol):
    async def stop(self, drain: bool = False) -> None: ...


class CoreRunner(Protocol):
    async def stop(self, drain: bool = True) -> None: ...


def test_matching_classes_conform() -> None:
    assert conformance_problems(Gate, CoreGate) == []
    assert conformance_problems(Runner, CoreRunner) == []


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [
        (Gate, CoreGateStrict, "required keyword-only parameter 'strict'"),
        (Gate, CoreGateBool, "returns None where Core's returns bool"),
        (Sink, CoreSinkTimeout, "keyword-only parameter 'timeout'"),
        (Runner, CoreRunnerNoDrain, "default of 'drain' is True in ours, False in Core"),
    ],
    ids=["required kw-only", "return type", "optional kw-only", "changed default"],
)
def test_core_changes_beyond_positional_parameters_are_problems(
    ours: type, theirs: type, expected: str
) -> None:
    problems = conformance_problems(ours, theirs)
    assert any(expected in problem for problem in problems), problems


def test_our_keyword_only_parameters_need_defaults() -> None:
    class Required:
        async def apply(self, adj: Any, *, strict: bool) -> None:
            return None

    class Optional:
        async def apply(self, adj: Any, *, strict: bool = False) -> None:
            return None

    [problem] = conformance_problems(Required, CoreGate)
    assert "keyword-only parameters Core never passes: strict" in problem
    assert conformance_problems(Optional, CoreGate) == []
    assert conformance_problems(Optional, CoreGateStrict) == []


def test_kwargs_accepts_core_keywords_and_a_returned_value_where_core_returns_none() -> None:
    class Flexible:
        async def apply(self, adj: Any, **options: Any) -> bool:
            return True

    problems = conformance_problems(Flexible, CoreGateStrict)
    assert problems == ["apply: returns bool where Core's returns None"]
