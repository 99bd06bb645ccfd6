"""Soak: a live stream, a worker killed with ``kill -9`` again and again, then the exact table.

A publisher spreads synthetic trades over ``MDP_SOAK_S`` seconds (default 30) while a worker
(``mdp run --source nats``, a child process) is killed ``MDP_SOAK_KILLS`` times (default 6) at
random moments and restarted at once. A last run catches up (``--idle-timeout``). The table must
equal the bars of every published tick built without any bus (counts, volumes, OHLC exact; vwap
to 1e-12), and the last summary must reconcile. ``bench/soak_nats.py`` runs the 2-minute,
20-kill version.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest
from polars.testing import assert_frame_equal

from market_data_pipeline.config import RunSettings
from market_data_pipeline.publish import TickPublisher, ensure_stream
from market_data_pipeline.runtime import execute
from market_data_pipeline.sinks import read_bars
from market_data_pipeline.sources.synthetic import SyntheticSource

SOAK_S = float(os.environ.get("MDP_SOAK_S", "30"))
KILLS = int(os.environ.get("MDP_SOAK_KILLS", "6"))
RATE = float(os.environ.get("MDP_SOAK_RATE", "20000"))  # ticks/s published
SYMBOLS = [f"S{i:02d}" for i in range(8)]
START = "2024-01-02T09:00:00Z"
START_NS = 1_704_186_000 * 1_000_000_000
MDP = [sys.executable, "-m", "market_data_pipeline.cli"]


def _source(ticks: int) -> SyntheticSource:
    return SyntheticSource(
        symbols=SYMBOLS, ticks=ticks, seed=11, start_ns=START_NS, batch_size=2000
    )


async def _publish_live(url: str, stream: str, prefix: str, ticks: int) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_stream(js, stream, prefix)
        publisher = TickPublisher(js, stream=stream, prefix=prefix, batch_ticks=250)
        started = time.monotonic()
        done = 0
        async for frame in _source(ticks).batches():
            await publisher.write(frame)
            done += frame.height
            await asyncio.sleep(max(0.0, started + done / RATE - time.monotonic()))
        await publisher.finish()
    finally:
        await nc.close()


def _worker(url: str, stream: str, sink: str, *extra: str) -> subprocess.Popen[str]:
    args = [
        *MDP, "run", "--source", "nats", "--nats-url", url, "--stream", stream,
        "--durable", "soak", "--sink", sink, "--resolution", "1s,1m",
        "--checkpoint-interval", "0.3", "--json", *extra,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDP_")}
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


async def _kill_repeatedly(url: str, stream: str, sink: str, kills: int, span_s: float) -> int:
    rng = random.Random(5)
    killed = 0
    for _ in range(kills):
        proc = _worker(url, stream, sink)
        await asyncio.sleep(rng.uniform(0.3, 2 * span_s / kills))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.communicate()
    return killed


@pytest.mark.slow
@pytest.mark.timeout(SOAK_S * 4 + 240)
async def test_kill_9_at_random_moments_leaves_exactly_the_uninterrupted_table(
    nats_url: str, stream_name: str, tmp_path: Path
) -> None:
    import json

    ticks = int(SOAK_S * RATE)
    sink = f"sqlite:///{tmp_path / 'soak.db'}"
    prefix = stream_name.lower()
    publisher = asyncio.create_task(_publish_live(nats_url, stream_name, prefix, ticks))
    await asyncio.sleep(0.5)  # the stream exists before the first worker looks for it
    killed = await _kill_repeatedly(nats_url, stream_name, sink, KILLS, SOAK_S)
    await publisher
    last = _worker(nats_url, stream_name, sink, "--idle-timeout", "3")
    out, err = last.communicate(timeout=SOAK_S * 2 + 120)
    assert last.returncode == 0, err
    summary = json.loads(out)
    assert summary["reconciled"]
    assert killed >= KILLS // 2  # most kills hit a running worker, not one already gone

    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    settings = RunSettings.model_validate(
        {"sink": reference, "resolution": "1s,1m", "ticks": ticks, "seed": 11,
         "symbols": SYMBOLS, "start": START}
    )  # fmt: skip
    assert (await execute(settings)).exit_code == 0
    got, want = read_bars(sink), read_bars(reference)
    assert_frame_equal(got.drop("vwap"), want.drop("vwap"))
    assert_frame_equal(got.select("vwap"), want.select("vwap"), check_exact=False, rel_tol=1e-12)
    print(
        f"soak: {ticks:,} ticks over {SOAK_S:.0f} s, {killed} kill -9s, {got.height:,} bars equal"
    )
