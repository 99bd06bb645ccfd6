"""Every project class that implements a Core protocol, and how to build a real one for a test.

``test_protocol_conformance`` checks each entry; ``test_every_implementer_is_registered`` finds
classes in the package that structurally match a Core protocol and fails if one is missing here,
so a new implementation cannot skip the suite.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Implementer:
    """A project class (``module:name`` under ``market_data_pipeline``) and the Core protocol."""

    protocol: str  # the name ``market_data_pipeline.core`` re-exports the protocol under
    module: str
    name: str
    # A service the behaviour check needs: "", "redis", "postgres", "nats" or "provider".
    needs: str = ""

    @property
    def test_id(self) -> str:
        """Return the id used in test names."""
        return f"{self.name}-{self.protocol.removesuffix('Protocol')}"


IMPLEMENTERS: tuple[Implementer, ...] = (
    Implementer("RateControllerProtocol", "flow.rate_gate", "RateGate"),
    Implementer("FeedbackPublisherProtocol", "bus.memory", "InMemoryBus"),
    Implementer("FeedbackPublisherProtocol", "bus.redis_streams", "RedisStreamBus", "redis"),
    Implementer("FeedbackPublisherProtocol", "bus.fan_in", "FanInBus", "redis"),
    Implementer("SinkProtocol", "sinks.sqlite", "SqliteSink"),
    Implementer("SinkProtocol", "sinks.postgres", "PostgresSink", "postgres"),
    Implementer("SinkProtocol", "sinks.memory", "MemorySink"),
    Implementer("SourceProtocol", "sources.synthetic", "SyntheticSource"),
    Implementer("SourceProtocol", "sources.replay.source", "ReplaySource"),
    Implementer("SourceProtocol", "sources.nats.source", "NatsSource", "nats"),
    Implementer("SourceProtocol", "sources.providers", "ProviderSource", "provider"),
    Implementer("SourceProtocol", "serve.filters", "FilteredSource"),
    Implementer("PipelineRunnerProtocol", "runtime", "Pipeline"),
)

# Core protocols a project class might implement (names as ``market_data_pipeline.core`` has them).
CORE_PROTOCOLS = (
    "RateControllerProtocol",
    "FeedbackPublisherProtocol",
    "SinkProtocol",
    "SourceProtocol",
    "PipelineRunnerProtocol",
)
