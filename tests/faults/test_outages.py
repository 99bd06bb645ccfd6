"""Store and bus outages during live runs, on private servers.

- PostgreSQL stopped and started again mid-run: the write queue waits (backpressure), retries
  within ``--write-retry-for`` and the run ends with every bar stored (exit 0).
- PostgreSQL stopped for good: exit 1, and the error, the summary and the table agree on what
  was written and what was not.
- Redis killed (-9) and started again mid-run: the run keeps going at its fallback, reconnects,
  and obeys an event published after the restart.
"""

from __future__ import annotations

import re
import time
import uuid
from functools import partial
from pathlib import Path

import psycopg
import pytest
from feedback_helpers import feedback
from redis_server import RedisServer
from waiting import wait_until

from .conftest import Scenario
from .procs import finish, start_mdp, summary, table
from .servers import PostgresServer

pytestmark = pytest.mark.faults
LIVE = ["run", "--rate", "20000", "--resolution", "1s", "--symbols", "A,B,C,D", "--json"]


def _database(server: PostgresServer) -> str:
    name = f"o{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.url.rsplit("/", 1)[0] + f"/{name}"


def _rows(url: str) -> int:
    try:
        return table(url).height
    except Exception:  # the server is starting or the table is not there yet
        return 0


def test_postgres_restart_mid_run(scenario: Scenario, private_postgres: PostgresServer) -> None:
    for _ in range(2):
        sink = _database(private_postgres)
        proc = start_mdp(*LIVE, "--duration", "6", "--sink", sink, "--write-retry-for", "60s")
        try:
            wait_until(partial(_rows, sink), "the first bars in PostgreSQL", timeout_s=60)
            private_postgres.stop("fast")
            time.sleep(1.5)  # the length of the outage is the experiment
        finally:
            private_postgres.start()
            code, out, err = finish(proc)
        report = summary(out)
        held = (
            code == 0
            and report is not None
            and report["reconciled"]
            and table(sink).height == report["bars_written"] == report["bars_built"]
        )
        scenario.record(held, f"exit {code}: {err.strip()[-300:]}")
    assert scenario.held == scenario.tried, scenario.notes


def test_postgres_that_stays_down(scenario: Scenario, private_postgres: PostgresServer) -> None:
    sink = _database(private_postgres)
    proc = start_mdp(*LIVE, "--duration", "60", "--sink", sink, "--write-retry-for", "2s")
    try:
        wait_until(lambda: _rows(sink) > 0, "the first bars in PostgreSQL", timeout_s=60)
        private_postgres.stop("fast")
        code, out, err = finish(proc)
    finally:
        private_postgres.start()
        finish(proc)
    report = summary(out)
    assert report is not None, err
    said = re.search(r"\((\d+) bars not written\)", report["error"] or "")
    stored = table(sink).height
    checks = {
        "exit 1": code == 1,
        "error count = summary": said is not None and int(said[1]) == report["bars_unwritten"],
        "built = written + unwritten": report["bars_built"]
        == report["bars_written"] + report["bars_unwritten"],
        "table = written": stored == report["bars_written"],
        "something unwritten": report["bars_unwritten"] > 0,
    }
    failed = [name for name, held in checks.items() if not held]
    scenario.record(not failed, f"{failed}: {report['error']} (table {stored})")
    assert scenario.held == scenario.tried, scenario.notes


async def _publish_soft(url: str, namespace: str) -> None:
    from market_data_pipeline.bus.redis_streams import RedisStreamBus

    bus = RedisStreamBus(url, namespace=namespace)
    try:
        event = feedback("fault-redis", "soft", time.time(), size=7, capacity=10)
        await bus.publish(event)
    finally:
        await bus.close()


def test_redis_killed_and_restarted_mid_run(
    tmp_path: Path, scenario: Scenario, private_redis: RedisServer
) -> None:
    import asyncio

    import redis

    namespace = f"faults-{uuid.uuid4().hex[:8]}"
    client = redis.Redis.from_url(private_redis.url)
    key = f"{namespace}:telemetry.feedback"
    args = [*LIVE, "--duration", "8", "--bus", private_redis.url, "--namespace", namespace]
    proc = start_mdp(*args, "--sink", f"sqlite:///{tmp_path / 'r.db'}")
    try:
        wait_until(lambda: client.exists(key), "the run's first heartbeat", timeout_s=60)
        private_redis.kill()
        time.sleep(1.0)  # the length of the outage is the experiment
        private_redis.start()
        client = redis.Redis.from_url(private_redis.url)
        wait_until(lambda: client.exists(key), "the heartbeat after the restart", timeout_s=30)
        asyncio.run(_publish_soft(private_redis.url, namespace))
    finally:
        code, out, err = finish(proc)
        client.close()
    report = summary(out)
    assert report is not None, err
    heard = report["feedback"]["coordinators"].get("fault-redis", {}).get("level")
    checks = {
        "exit 0": code == 0,
        "reconciled": report["reconciled"],
        "reconnected": report["feedback"]["bus_connected"],
        "obeyed an event sent after the restart": heard == "soft",
        "table = written": table(f"sqlite:///{tmp_path / 'r.db'}").height == report["bars_written"],
    }
    failed = [name for name, held in checks.items() if not held]
    scenario.record(not failed, f"{failed}: exit {code} {err.strip()[-200:]}")
    assert scenario.held == scenario.tried, scenario.notes
