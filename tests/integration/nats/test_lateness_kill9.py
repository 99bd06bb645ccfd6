"""Allowed lateness over NATS: a worker killed with ``kill -9`` while late ticks stream in.

A publisher sends trades of which some arrive late: 3% by up to 30 s (within
``--allowed-lateness 60s``: they revise their bars) and 0.5% by 3 to 4 minutes (beyond it: they
go to the ``--late-output`` table). A worker is killed at random moments and restarted; a last
run catches up. The table, revisions included, and the late-tick table must equal what one
engine builds from the same ticks in the same order without any bus or restart.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import nats
import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from market_data_pipeline.aggregation.builder import BarEngine
from market_data_pipeline.aggregation.resolution import parse_resolutions
from market_data_pipeline.publish import TickPublisher, ensure_stream
from market_data_pipeline.sources.synthetic import SyntheticSource

SPAN_S = 12.0  # the publisher spreads the ticks over this long
TICKS = 80_000
KILLS = 4
SYMBOLS = [f"S{i:02d}" for i in range(6)]
START_NS = 1_704_186_000 * 1_000_000_000
S = 1_000_000_000
MDP = [sys.executable, "-m", "market_data_pipeline.cli"]
LATENESS = ("--grace", "1s", "--allowed-lateness", "60s", "--resolution", "1s,1m")


async def arrivals(ticks: int, seed: int) -> pl.DataFrame:
    """Synthetic trades in arrival order: most in time, some late within and beyond 60 s."""
    source = SyntheticSource(symbols=SYMBOLS, ticks=ticks, seed=seed, start_ns=START_NS)
    frame = pl.concat([batch async for batch in source.batches()])
    rng = np.random.default_rng(seed)
    roll = rng.random(frame.height)
    delay = np.where(roll < 0.03, rng.integers(0, 30 * S, frame.height), 0)
    delay = np.where(roll > 0.995, rng.integers(180 * S, 240 * S, frame.height), delay)
    arrive = frame.get_column("ts_ns") + pl.Series(delay)
    return frame.with_columns(arrive.alias("_at")).sort("_at", maintain_order=True).drop("_at")


def reference(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The final table (with revisions) and the late ticks of one engine fed ``frame``."""
    engine = BarEngine(
        parse_resolutions("1s,1m"), 1 * S, allowed_lateness_ns=60 * S, keep_late=True
    )
    bars = pl.concat([engine.add_ticks(frame), engine.flush()])
    final = bars.unique(["symbol", "resolution", "ts_ns"], keep="last")
    late = engine.take_late()
    return _bars_order(final), late.select("symbol", "ts_ns", "price", "size").sort(pl.all())


def _bars_order(bars: pl.DataFrame) -> pl.DataFrame:
    values = ["open", "high", "low", "close", "volume", "trades", "revision"]
    return bars.select("symbol", "resolution", "ts_ns", *values).sort(
        "symbol", "resolution", "ts_ns"
    )


async def _publish(url: str, stream: str, frame: pl.DataFrame) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        prefix = stream.lower()
        await ensure_stream(js, stream, prefix)
        publisher = TickPublisher(js, stream=stream, prefix=prefix, batch_ticks=100)
        started, step = time.monotonic(), 2_000
        for done in range(0, frame.height, step):
            await publisher.write(frame.slice(done, step))
            await asyncio.sleep(max(0.0, started + done / frame.height * SPAN_S - time.monotonic()))
        await publisher.finish()
    finally:
        await nc.close()


def _worker(url: str, stream: str, db: Path, *extra: str) -> subprocess.Popen[str]:
    args = [
        *MDP, "run", "--source", "nats", "--nats-url", url, "--stream", stream,
        "--durable", "late", "--sink", f"sqlite:///{db}", *LATENESS,
        "--late-output", "table:late_ticks", "--checkpoint-interval", "0.2", "--json", *extra,
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDP_")}
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def _position(db: Path) -> int:
    """The stream position of the last checkpoint (0 before the first)."""
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            found = conn.execute("SELECT max(position) FROM mdp_checkpoints").fetchone()
        except sqlite3.OperationalError:  # no checkpoint table yet
            return 0
    return int(found[0] or 0)


async def _advanced(db: Path, before: int, proc: subprocess.Popen[str]) -> bool:
    """Wait until the worker commits a checkpoint past ``before``; False if it ends first."""
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if _position(db) > before:
            return True
        await asyncio.sleep(0.05)
    return False


def _stored(db: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT symbol, resolution, ts, open, high, low, close, volume, trades, revision"
            " FROM bars"
        ).fetchall()
        late = conn.execute("SELECT symbol, ts_ns, price, size FROM late_ticks").fetchall()
    bars = pl.DataFrame(
        rows,
        schema=["symbol", "resolution", "ts", "open", "high", "low", "close", "volume",
                "trades", "revision"],
        orient="row",
    )  # fmt: skip
    ts = pl.col("ts").str.to_datetime(time_zone="UTC").dt.epoch("ns").alias("ts_ns")
    late_frame = pl.DataFrame(late, schema=["symbol", "ts_ns", "price", "size"], orient="row")
    return _bars_order(bars.with_columns(ts)), late_frame.sort(pl.all())


@pytest.mark.timeout(SPAN_S * 10 + 240)
async def test_kill_9_with_late_ticks_leaves_the_reference_table_and_late_ticks(
    nats_url: str, stream_name: str, tmp_path: Path
) -> None:
    import json

    frame = await arrivals(TICKS, seed=3)
    db = tmp_path / "late.db"
    publisher = asyncio.create_task(_publish(nats_url, stream_name, frame))
    await asyncio.sleep(0.5)  # the stream exists before the first worker looks for it
    rng, killed = random.Random(9), 0
    for _ in range(KILLS):
        proc = _worker(nats_url, stream_name, db)
        # Killed once it committed a checkpoint further on, at a random moment after that.
        if await _advanced(db, _position(db), proc):
            await asyncio.sleep(rng.uniform(0.0, 0.8))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.communicate()
    await publisher
    last = _worker(nats_url, stream_name, db, "--idle-timeout", "3")
    out, err = last.communicate(timeout=SPAN_S * 4 + 120)
    assert last.returncode == 0, err
    summary = json.loads(out)
    assert summary["reconciled"]
    assert killed >= KILLS // 2
    assert "restored" in summary["resolutions"]["1s"]  # the last run went on from a checkpoint

    want_bars, want_late = reference(frame)
    got_bars, got_late = _stored(db)
    assert (want_bars.get_column("revision") > 0).any()  # the stream did revise bars
    assert want_late.height > 0
    assert_frame_equal(got_bars, want_bars, check_exact=False, rel_tol=1e-12)
    assert_frame_equal(got_late, want_late)
