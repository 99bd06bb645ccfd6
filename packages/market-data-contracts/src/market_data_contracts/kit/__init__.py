"""A conformance kit for other implementers of Core's protocols, in the style of pandas' base tests.

A repository that implements one of Core's protocols subclasses a base class, supplies the
fixture that builds its implementation, and runs the same checks this pipeline runs on itself::

    # conftest.py
    pytest_plugins = ["market_data_contracts.kit.plugin"]

    # test_conformance.py
    import pytest
    from market_data_contracts import kit

    class TestMyPublisher(kit.BaseFeedbackPublisherTests):
        @pytest.fixture
        def publisher(self):
            return MyPublisher(...)

        @pytest.fixture
        def read_back(self, redis_url):
            return kit.redis_reader(redis_url, "mdp:telemetry.feedback")

Base classes, one per capability (each test says in its name what it proves):

    BaseFeedbackPublisherTests    Core FeedbackPublisher: isinstance, signatures, publish returns
                                  None, each level arrives as sent in a form the pipeline decodes
    BaseRateControllerTests       Core RateController: isinstance, signatures, apply returns None
                                  for every level, the scale follows (when observable)
    BaseMarketDataProviderTests   Core MarketDataProvider: isinstance, signatures, and without a
                                  reachable upstream every stream fails fast with Core's
                                  ConnectionFailed

Fixtures the base classes need raise ``NotImplementedError`` until the subclass supplies them;
optional ones return ``None`` and the tests that need them skip, saying which fixture to supply.
"""

from __future__ import annotations

from .feedback_publisher import BaseFeedbackPublisherTests, redis_reader
from .provider import BaseMarketDataProviderTests
from .rate_controller import BaseRateControllerTests

__all__ = [
    "BaseFeedbackPublisherTests",
    "BaseMarketDataProviderTests",
    "BaseRateControllerTests",
    "redis_reader",
]
