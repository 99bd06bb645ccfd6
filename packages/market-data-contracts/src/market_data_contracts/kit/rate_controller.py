"""Checks for implementations of Core's ``RateController`` (``async apply(adj) -> None``).

Fixtures a subclass supplies:

    controller      the object under test (required)
    provider_name   the provider its adjustments name (default ``"kit"``)
    current_scale   ``() -> float``: the scale the controller applies now; optional (the checks
                    that need it skip without it)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .checks import core_protocol, signature_problems, within

PROTOCOL = "RateControllerProtocol"
TIMEOUT_S = 10.0
SCALES = {"ok": 1.0, "soft": 0.5, "hard": 0.0}


@pytest.mark.kit
class BaseRateControllerTests:
    """Subclass and supply ``controller`` (and ``current_scale``) to check a RateController."""

    @pytest.fixture
    def controller(self) -> Any:
        raise NotImplementedError("supply a `controller` fixture that builds the implementation")

    @pytest.fixture
    def provider_name(self) -> str:
        return "kit"

    @pytest.fixture
    def current_scale(self) -> Callable[[], float] | None:
        return None

    def test_is_a_core_rate_controller(self, controller: Any) -> None:
        assert isinstance(controller, core_protocol(PROTOCOL))

    def test_members_match_core_signatures(self, controller: Any) -> None:
        problems = signature_problems(controller, PROTOCOL)
        assert not problems, f"{type(controller).__name__} vs Core RateController: {problems}"

    @pytest.mark.parametrize("level", ["ok", "soft", "hard"])
    async def test_apply_returns_none_and_the_scale_follows(
        self,
        level: str,
        controller: Any,
        provider_name: str,
        current_scale: Callable[[], float] | None,
        make_rate_adjustment: Callable[..., Any],
    ) -> None:
        adjustment = make_rate_adjustment(provider_name, SCALES[level], level)
        result = await within(controller.apply(adjustment), TIMEOUT_S, "apply")
        assert result is None, f"apply returned {result!r}; Core documents None"
        if current_scale is not None:
            assert current_scale() == pytest.approx(SCALES[level])

    async def test_hard_then_ok_resumes_full_rate(
        self,
        controller: Any,
        provider_name: str,
        current_scale: Callable[[], float] | None,
        make_rate_adjustment: Callable[..., Any],
    ) -> None:
        if current_scale is None:
            pytest.skip("supply a `current_scale` fixture to check that ok resumes")
        await within(controller.apply(make_rate_adjustment(provider_name, 0.0, "hard")), 10, "")
        assert current_scale() == 0.0
        await within(controller.apply(make_rate_adjustment(provider_name, 1.0, "ok")), 10, "")
        assert current_scale() == 1.0
