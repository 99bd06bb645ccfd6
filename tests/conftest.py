"""Shared fixtures: real PostgreSQL and Redis, each test isolated.

Services come from ``MDP_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``)
and ``MDP_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``). A missing service skips its tests
with the reason, except under ``CI=true``, where it fails them.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import quote, urlsplit

import pytest

# Only pytest and the service drivers (imported inside the fixtures) here: the Core contract suite
# loads this file in environments holding nothing beyond its requirements ([tool.mdp.contracts]
# extras). The hypothesis profile lives with the property tests (tests/support).

POSTGRES_URL = os.environ.get("MDP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("MDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        address = (parts.hostname or "127.0.0.1", parts.port or default_port)
        with socket.create_connection(address, 2):
            return True
    except OSError:
        return False


def _require(url: str, default_port: int, name: str) -> None:
    if _reachable(url, default_port):
        return
    message = f"{name} is not reachable at {urlsplit(url).netloc}"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing service is a failure)")
    pytest.skip(message)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped after the test."""
    _require(POSTGRES_URL, 5432, "PostgreSQL")
    import psycopg

    schema = f"mdp_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def redis_url() -> str:
    """The Redis URL; pair it with ``redis_namespace`` to keep tests apart."""
    _require(REDIS_URL, 6379, "Redis")
    return REDIS_URL


@pytest.fixture
def redis_namespace(redis_url: str) -> Iterator[str]:
    """A namespace unique to this test; every key under it is deleted afterwards."""
    import redis

    namespace = f"mdptest-{uuid.uuid4().hex[:12]}"
    yield namespace
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{namespace}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
