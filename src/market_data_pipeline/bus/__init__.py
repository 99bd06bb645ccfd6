"""Feedback buses: ``open_bus(url)`` picks the backend from the URL.

``None`` or ``memory://`` gives the in-process bus (the embedded default); ``redis://host:port/db``
(or ``rediss://``) gives the Redis Streams bus in Core's Pulse wire format.
"""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from .base import FeedbackBus
from .memory import InMemoryBus

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


def open_bus(
    url: str | None,
    *,
    namespace: str = "mdp",
    group: str = "pipeline",
    **options: Any,
) -> FeedbackBus:
    """Return the bus for ``url``: ``None``/``memory://`` in-process, ``redis://...`` Redis Streams.

    ``options`` go to ``RedisStreamBus`` (``consumer``, ``block_ms``, ``backoff_cap_s``,
    ``claim_idle_ms``, ``dedupe_size``, ``maxlen``) or ``InMemoryBus`` (``queue_size``).
    """
    if url is None or url in ("memory://", "memory:", "memory"):
        return InMemoryBus(**options)
    if url.startswith(REDIS_SCHEMES):
        try:
            from .redis_streams import RedisStreamBus
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise UsageError(
                "the Redis bus needs the redis extra: pip install 'market-data-pipeline[redis]'"
            ) from exc
        return RedisStreamBus(url, namespace=namespace, group=group, **options)
    scheme = url.split("://", 1)[0] if "://" in url else url
    raise UsageError(f"unknown bus URL scheme {scheme!r}: use memory:// or redis://host:port/db")


__all__ = ["FeedbackBus", "InMemoryBus", "open_bus"]
