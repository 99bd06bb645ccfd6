"""Checks for implementations of Core's ``MarketDataProvider``, on the connection-failure path.

Without an upstream to connect to (no gateway, a closed port), every stream a provider offers
must fail fast with Core's ``ConnectionFailed`` (what Core's protocol documents), so that a
pipeline can tell "retry later" from a bug. Fixtures a subclass supplies:

    provider        a provider configured to an unreachable upstream (required)
    instruments     the instruments to ask for (default AAPL)
    fail_within_s   how long failing may take (default 20 s: covers a few reconnect backoffs)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from .checks import core_protocol, first_item, signature_problems, within

PROTOCOL = "MarketDataProviderProtocol"


def _calls(instruments: list[Any]) -> dict[str, Any]:
    end = datetime.now(UTC)
    return {
        "stream_quotes": lambda p: p.stream_quotes(instruments),
        "stream_bars": lambda p: p.stream_bars("1m", instruments),
        "stream_trades": lambda p: p.stream_trades(instruments),
        "request_historical_bars": lambda p: p.request_historical_bars(
            instruments[0], end - timedelta(days=1), end, "1h"
        ),
        "stream_options": lambda p: p.stream_options(instruments[0]),
    }


@pytest.mark.kit
class BaseMarketDataProviderTests:
    """Subclass and supply ``provider`` (pointed at nothing) to check a MarketDataProvider."""

    @pytest.fixture
    def provider(self) -> Any:
        raise NotImplementedError("supply a `provider` fixture pointed at an unreachable upstream")

    @pytest.fixture
    def instruments(self) -> list[Any]:
        from ..core import Instrument

        return [Instrument(symbol="AAPL")]

    @pytest.fixture
    def fail_within_s(self) -> float:
        return 20.0

    def test_is_a_core_market_data_provider(self, provider: Any) -> None:
        assert isinstance(provider, core_protocol(PROTOCOL))

    def test_members_match_core_signatures(self, provider: Any) -> None:
        problems = signature_problems(provider, PROTOCOL)
        assert not problems, f"{type(provider).__name__} vs Core MarketDataProvider: {problems}"

    @pytest.mark.parametrize("method", list(_calls([None])))
    async def test_unreachable_upstream_fails_fast_with_connection_failed(
        self, method: str, provider: Any, instruments: list[Any], fail_within_s: float
    ) -> None:
        from ..core import ConnectionFailed

        stream = _calls(instruments)[method](provider)
        try:
            item = await within(first_item(stream), fail_within_s, f"{method} without upstream")
        except ConnectionFailed:
            return
        except Exception as exc:  # reported, not raised: the type is what is being checked
            pytest.fail(
                f"{method} raised {type(exc).__name__}: {exc}; Core documents ConnectionFailed"
            )
        pytest.fail(f"{method} yielded {item!r} without any upstream to connect to")

    async def test_close_after_a_failed_connection_is_safe(self, provider: Any) -> None:
        close = getattr(provider, "close", None)
        if close is None:
            pytest.skip("the provider has no close()")
        await within(close(), 10.0, "close")
