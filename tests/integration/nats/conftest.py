"""Fixtures for the NATS source: the real server at ``MDP_TEST_NATS_URL``, one stream per test.

Every test gets stream names of its own (the suites of several checkouts share the server);
the streams (and their dead-letter streams) are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Iterator

import pytest

NATS_URL = os.environ.get("MDP_TEST_NATS_URL", "nats://127.0.0.1:4222")


IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def nats_url() -> str:
    """The NATS URL (JetStream enabled); a missing server skips, or fails under CI=true."""
    host_port = NATS_URL.split("://", 1)[-1].rsplit("@", 1)[-1]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port or 4222)), 2):
            return NATS_URL
    except OSError:
        message = f"NATS is not reachable at {host_port}"
        if IN_CI:
            pytest.fail(f"{message} (CI=true: a missing service is a failure)")
        pytest.skip(message)


@pytest.fixture
def stream_name(nats_url: str) -> Iterator[str]:
    """A stream name unique to this test; it and its ``_DLQ`` stream are deleted afterwards."""
    name = f"MDPTEST_{uuid.uuid4().hex[:10].upper()}"
    yield name
    asyncio.run(_delete_streams(nats_url, [name, f"{name}_DLQ"]))


async def _delete_streams(url: str, names: list[str]) -> None:
    import nats
    import nats.js.errors

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        for name in names:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(name)
    finally:
        await nc.close()
