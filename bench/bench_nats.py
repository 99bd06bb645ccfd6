"""NATS JetStream: publish and consume batched ticks; mdp per worker next to a raw nats-py loop.

    python3 scripts/dev.py bench bench_nats [--ticks 5000000] [--batch-ticks 1000] [--url URL]

1. ``mdp publish`` of ``--ticks`` synthetic trades in Arrow IPC messages of ``--batch-ticks``.
2. Baseline: a raw nats-py loop over the same stream: fetch 256 messages, ack the last
   (AckPolicy.ALL), decode nothing.
3. ``mdp run --source nats`` (one worker): decode, checkpoint every second, 1m bars into SQLite.

Floor: 200,000 ticks/s per worker with batched messages, and within 2x of the raw loop. Prints
ticks/s, CPU seconds, peak RSS and the load average; the stream is deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any


async def publish(url: str, stream: str, prefix: str, ticks: int, batch_ticks: int) -> float:
    from market_data_pipeline.sources.nats_publish import publish_source
    from market_data_pipeline.sources.synthetic import SyntheticSource

    source = SyntheticSource(
        symbols=["A", "B", "C", "D", "E"], ticks=ticks, seed=1, batch_size=50_000
    )
    t0 = time.perf_counter()
    report = await publish_source(
        source.batches(), url=url, stream=stream, prefix=prefix, batch_ticks=batch_ticks
    )
    assert report.ticks == ticks
    return time.perf_counter() - t0


async def raw_loop(url: str, stream: str, messages: int) -> float:
    import nats
    import nats.js.api as api

    nc = await nats.connect(url)
    js = nc.jetstream()
    config = api.ConsumerConfig(
        durable_name="raw", ack_policy=api.AckPolicy.ALL, max_ack_pending=200_000
    )
    await js.add_consumer(stream, config)
    sub = await js.pull_subscribe_bind("raw", stream)
    t0 = time.perf_counter()
    seen = 0
    while seen < messages:
        msgs = await sub.fetch(256, timeout=5)
        seen += len(msgs)
        await msgs[-1].ack()
    elapsed = time.perf_counter() - t0
    await nc.close()
    return elapsed


def mdp_worker(url: str, stream: str, sink: str) -> dict[str, Any]:
    from market_data_pipeline.config import RunSettings
    from market_data_pipeline.runtime import execute

    settings = RunSettings.model_validate(
        {"source": "nats", "nats_url": url, "stream": stream, "sink": sink, "idle_timeout": 2.0}
    )
    report = asyncio.run(execute(settings))
    if report.exit_code != 0:
        raise SystemExit(f"run failed: {report.error}")
    return report.as_dict()


async def delete_streams(url: str, names: list[str]) -> None:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    for name in names:
        with contextlib.suppress(Exception):
            await js.delete_stream(name)
    await nc.close()


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=5_000_000)
    parser.add_argument("--batch-ticks", type=int, default=1_000)
    parser.add_argument("--url", default="nats://127.0.0.1:4222")
    args = parser.parse_args()
    stream = f"MDPBENCH_{uuid.uuid4().hex[:8].upper()}"
    prefix = stream.lower()
    tmp = Path(tempfile.mkdtemp(prefix="mdp-bench-"))
    messages = -(-args.ticks // 5 // args.batch_ticks) * 5
    try:
        c0 = cpu_s()
        pub_s = asyncio.run(publish(args.url, stream, prefix, args.ticks, args.batch_ticks))
        c1 = cpu_s()
        raw_s = asyncio.run(raw_loop(args.url, stream, messages))
        c2 = cpu_s()
        t0 = time.perf_counter()
        report = mdp_worker(args.url, stream, f"sqlite:///{tmp / 'nats.db'}")
        mdp_s = float(report["ingest_s"]) - 2.0  # the idle timeout at the end is not work
        wall_s = time.perf_counter() - t0
        c3 = cpu_s()
        assert report["ticks_admitted"] == args.ticks, report["ticks_admitted"]
    finally:
        asyncio.run(delete_streams(args.url, [stream, f"{stream}_DLQ"]))
    ticks = args.ticks
    print(f"{ticks:,} ticks in {messages:,} Arrow messages of {args.batch_ticks} ticks")
    print(f"{'case':<44}{'ticks/s':>13}{'cpu s':>8}{'x raw':>8}")
    print(f"{'mdp publish':<44}{ticks / pub_s:>13,.0f}{c1 - c0:>8.1f}{'':>8}")
    raw = "baseline: raw nats-py fetch + ack"
    print(f"{raw:<44}{ticks / raw_s:>13,.0f}{c2 - c1:>8.1f}{1.0:>8.2f}")
    name = "mdp run --source nats (1 worker, SQLite)"
    print(f"{name:<44}{ticks / mdp_s:>13,.0f}{c3 - c2:>8.1f}{mdp_s / raw_s:>8.2f}")
    print(f"(mdp wall incl. start-up and 2 s idle timeout: {wall_s:.1f} s)")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak_mb:,.0f} MB; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
