"""``/readyz``: ready when every store the service writes to and its bus answer."""

from __future__ import annotations

import asyncio

from ..bus.urls import is_memory_bus
from ..sinks.urls import mask_urls, redact_url
from .guards import ServeConfig
from .records import RunStore

PROBE_TIMEOUT_S = 3.0


async def check_ready(config: ServeConfig, records: RunStore) -> str | None:
    """Return why the service is not ready (one line), or None when it is."""
    for sink in config.sinks:
        store = records if sink == config.default_sink else RunStore(sink)
        reason = await _probe(store.ping, f"store {redact_url(sink)}")
        if reason is not None:
            return reason
    if not is_memory_bus(config.bus):
        assert config.bus is not None
        return await _probe(lambda: _ping_redis(str(config.bus)), f"bus {redact_url(config.bus)}")
    return None


async def _probe(check: object, what: str) -> str | None:
    try:
        await asyncio.wait_for(asyncio.to_thread(check), PROBE_TIMEOUT_S)  # type: ignore[arg-type]
    except TimeoutError:
        return f"{what} did not answer within {PROBE_TIMEOUT_S:g} s"
    except Exception as exc:
        first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        return mask_urls(f"{what} is unreachable: {first.strip()}")
    return None


def _ping_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
