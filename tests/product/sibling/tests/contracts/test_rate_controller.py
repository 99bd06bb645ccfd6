"""ScaleKeeper against the kit's RateController checks, as a sibling repository writes them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fake_downstream import ScaleKeeper

from market_data_contracts import kit


@pytest.mark.contracts
class TestScaleKeeper(kit.BaseRateControllerTests):
    @pytest.fixture
    def controller(self) -> ScaleKeeper:
        return ScaleKeeper()

    @pytest.fixture
    def current_scale(self, controller: ScaleKeeper) -> Callable[[], float]:
        return lambda: controller.scale
