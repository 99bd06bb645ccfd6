"""A worker on a replicated (R3) stream of a 3-node NATS cluster, while the stream's leader dies.

The test starts its own cluster (``tests/support/nats_cluster.py``: ``nats-server`` on loopback
ports, JetStream stores under ``tmp_path``), creates a stream with three replicas and publishes
synthetic trades into it live, each message with a ``Nats-Msg-Id`` and retried until acknowledged
(so a publish lost in the election is neither missing nor doubled). A worker (``mdp run --source
nats``, a child process, given all three servers) consumes it; once it has committed a checkpoint,
the node leading the stream is killed with SIGKILL. The worker must end with exactly the bars of
every published tick, and a summary that reconciles.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats_cluster import NATS_SERVER, NatsCluster, stream_leader
from polars.testing import assert_frame_equal

from market_data_pipeline.config import RunSettings
from market_data_pipeline.runtime import execute
from market_data_pipeline.sinks import read_bars
from market_data_pipeline.sources.nats.bodies import encode_arrow
from market_data_pipeline.sources.synthetic import SyntheticSource

SYMBOLS = ["AAA", "BBB", "CCC", "DDD"]
START = "2024-01-02T09:00:00Z"
START_NS = 1_704_186_000 * 1_000_000_000
TICKS = 120_000
RATE = 20_000.0  # ticks/s published: about 6 s of stream
STREAM, PREFIX = "MDPR3", "r3"
IN_CI = os.environ.get("CI", "").lower() == "true"


def _source() -> SyntheticSource:
    return SyntheticSource(symbols=SYMBOLS, ticks=TICKS, seed=3, start_ns=START_NS, batch_size=400)


async def _publish_live(url: str) -> None:
    """Publish every tick once, at ``RATE``, riding out a node's death by retrying."""
    nc = await nats.connect(url.split(","), max_reconnect_attempts=-1, reconnect_time_wait=0.1)
    js = nc.jetstream()
    started, done, number = time.monotonic(), 0, 0
    try:
        async for frame in _source().batches():
            for (symbol,), part in frame.group_by(["symbol"], maintain_order=True):
                number += 1
                await _publish_once(js, f"{PREFIX}.{symbol}", encode_arrow(part), str(number))
            done += frame.height
            await asyncio.sleep(max(0.0, started + done / RATE - time.monotonic()))
    finally:
        await nc.close()


async def _publish_once(js: Any, subject: str, body: bytes, msg_id: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            await js.publish(subject, body, headers={"Nats-Msg-Id": msg_id}, timeout=2)
            return
        except Exception:  # an election or a reconnect: the same id again is deduplicated
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


def _committed(db: Path) -> bool:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            row = conn.execute("SELECT position FROM mdp_checkpoints").fetchone()
    except sqlite3.OperationalError:  # not created yet
        return False
    return row is not None and int(row[0]) > 0


async def _wait_for_checkpoint(db: Path, worker: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60  # guards a hang only
    while not _committed(db):
        assert worker.poll() is None, worker.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "no checkpoint within 60 s"
        await asyncio.sleep(0.05)


def _worker(url: str, db: Path) -> subprocess.Popen[str]:
    args = [
        sys.executable, "-m", "market_data_pipeline.cli", "run", "--source", "nats",
        "--nats-url", url, "--stream", STREAM, "--durable", "r3", "--sink", f"sqlite:///{db}",
        "--resolution", "1s,1m", "--checkpoint-interval", "0.2", "--idle-timeout", "10", "--json",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDP_")}
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    if not Path(NATS_SERVER).exists():
        message = f"no nats-server at {NATS_SERVER} (MDP_TEST_NATS_SERVER)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    nodes = NatsCluster(tmp_path / "cluster")
    nodes.start()
    yield nodes
    nodes.stop()


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_a_worker_keeps_every_tick_when_the_stream_leader_node_is_killed(
    cluster: NatsCluster, tmp_path: Path
) -> None:
    await cluster.wait_ready()
    nc = await nats.connect(cluster.url.split(","))
    await nc.jetstream().add_stream(name=STREAM, subjects=[f"{PREFIX}.>"], num_replicas=3)
    await nc.close()
    publisher = asyncio.create_task(_publish_live(cluster.url))
    db = tmp_path / "bars.db"
    worker = _worker(cluster.url, db)
    try:
        await _wait_for_checkpoint(db, worker)
        leader = await stream_leader(cluster.url, STREAM)
        cluster.kill(leader)
        assert not publisher.done()  # the node died mid-stream
        await publisher
        out, err = await asyncio.to_thread(worker.communicate, None, 180)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert worker.returncode == 0, err[-2000:]
    summary = json.loads(out)
    print(f"cluster: leader {leader} killed; worker stderr: {err.strip()[-600:] or '(none)'}")
    assert summary["reconciled"]
    assert summary["ticks_admitted"] == TICKS

    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    settings = RunSettings.model_validate(
        {"sink": reference, "resolution": "1s,1m", "ticks": TICKS, "seed": 3,
         "symbols": SYMBOLS, "start": START}
    )  # fmt: skip
    assert (await execute(settings)).exit_code == 0
    got, want = read_bars(f"sqlite:///{db}"), read_bars(reference)
    assert_frame_equal(got.drop("vwap"), want.drop("vwap"))
    assert_frame_equal(got.select("vwap"), want.select("vwap"), check_exact=False, rel_tol=1e-12)
