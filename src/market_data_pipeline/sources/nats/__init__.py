"""NATS JetStream: ``NatsSource`` (``source``) consumes ticks, ``bodies`` decodes and encodes
the message bodies (Arrow, JSON, Pulse). The publisher is ``market_data_pipeline.publish``.
"""

from ..._lazy import lazy_exports

__getattr__ = lazy_exports(__name__, {"NatsSource": "source"})
