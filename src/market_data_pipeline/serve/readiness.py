"""``/readyz``: ready when every store the service writes to and its bus answer."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from ..bus.urls import is_memory_bus
from ..sinks.urls import parse_sink_url
from ..urls import mask_urls, redact_url
from .guards import ServeConfig
from .records import RunStore

PROBE_TIMEOUT_S = 3.0


async def check_ready(config: ServeConfig, records: RunStore) -> str | None:
    """Return why the service is not ready (one line), or None when it is."""
    for sink in config.sinks:
        reason = await _probe(lambda url=sink: _ping_store(url), f"store {redact_url(sink)}")
        if reason is not None:
            return reason
    reason = await _probe(records.ping, f"run records of {redact_url(config.default_sink)}")
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


def _ping_store(url: str) -> None:
    target = parse_sink_url(url)
    if target.backend == "postgresql":
        import psycopg

        with psycopg.connect(target.location, connect_timeout=2) as pg:
            pg.execute("SELECT 1")
        return
    path = Path(target.location)
    path.parent.mkdir(parents=True, exist_ok=True)
    lite = sqlite3.connect(path, timeout=2)  # reading never waits for a writer in WAL mode
    try:
        lite.execute("SELECT 1").fetchall()
    finally:
        lite.close()


def _ping_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    finally:
        client.close()
