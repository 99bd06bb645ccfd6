"""Feedback buses: ``open_bus(url)`` picks the backend from the URL.

``None`` or ``memory://`` gives the in-process bus (the embedded default); ``redis://host:port/db``
(or ``rediss://``) gives the Redis Streams bus in Core's Pulse wire format, listening on
``{namespace}:telemetry.feedback`` or on the stream keys given as ``streams`` (``{namespace}`` in a
key is replaced; several keys are merged by ``FanInBus``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .._lazy import lazy_exports
from ..errors import UsageError
from .base import FeedbackBus
from .fan_in import FanInBus
from .urls import check_bus_url, is_memory_bus

if TYPE_CHECKING:
    from .memory import InMemoryBus


def open_bus(
    url: str | None,
    *,
    namespace: str = "mdp",
    group: str = "pipeline",
    streams: Sequence[str] = (),
    **options: Any,
) -> FeedbackBus:
    """Return the bus for ``url``: ``None``/``memory://`` in-process, ``redis://...`` Redis Streams.

    ``options`` go to ``RedisStreamBus`` (``consumer``, ``block_ms``, ``backoff_cap_s``,
    ``claim_idle_ms``, ``dedupe_size``, ``maxlen``) or ``InMemoryBus`` (``queue_size``).
    """
    if url is None or is_memory_bus(url):
        if streams:
            raise UsageError("--feedback-stream needs a Redis bus: add --bus redis://host:6379/0")
        from .memory import InMemoryBus

        return InMemoryBus(**options)
    check_bus_url(url)
    from .redis_streams import RedisStreamBus

    keys = stream_keys(streams, namespace)
    if len(keys) <= 1:
        key = keys[0] if keys else None
        return RedisStreamBus(url, namespace=namespace, group=group, stream_key=key, **options)
    members = [
        RedisStreamBus(url, namespace=namespace, group=group, stream_key=key, **options)
        for key in keys
    ]
    return FanInBus(members)


def stream_keys(streams: Sequence[str], namespace: str) -> list[str]:
    """Return the keys ``--feedback-stream`` names: ``{namespace}`` replaced, each once, in order.

    An empty list means the default key, ``{namespace}:telemetry.feedback``.
    """
    keys = [key.replace("{namespace}", namespace) for key in streams]
    if any(not key.strip() for key in keys):
        raise UsageError("--feedback-stream: a stream key cannot be empty")
    return list(dict.fromkeys(keys))  # a key given twice is read once


__all__ = ["FanInBus", "FeedbackBus", "InMemoryBus", "open_bus", "stream_keys"]

# InMemoryBus imports Core; the CLI checks bus URLs (``urls``) before Core is loaded.
__getattr__ = lazy_exports(__name__, {"InMemoryBus": "memory"})
