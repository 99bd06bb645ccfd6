"""Bus URLs: which backend a URL names (stdlib only, so the CLI checks it before heavy imports)."""

from __future__ import annotations

from ..errors import UsageError
from ..extras import require_extra
from ..urls import redact_url

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
MEMORY_URLS = ("memory://", "memory:", "memory")


def is_memory_bus(url: str | None) -> bool:
    """True for the in-process bus: no URL, or ``memory://``."""
    return url is None or url in MEMORY_URLS


def check_bus_url(url: str | None) -> None:
    """Raise ``UsageError`` for an unknown scheme, or a Redis URL without the redis driver."""
    if is_memory_bus(url):
        return
    assert url is not None
    if not url.startswith(REDIS_SCHEMES):
        scheme = url.split("://", 1)[0] if "://" in url else redact_url(url)
        raise UsageError(
            f"unknown bus URL scheme {scheme!r}: use --bus memory:// or --bus redis://host:6379/0"
        )
    require_extra("redis", "a Redis bus (--bus redis://...)")
