"""NATS JetStream: publish and consume batched ticks; mdp per worker next to a raw nats-py loop.

    python3 scripts/dev.py bench bench_nats [--ticks 5000000] [--batch-ticks 1000] [--rounds 3]

1. ``mdp publish`` of ``--ticks`` synthetic trades (5 symbols) in Arrow IPC messages of
   ``--batch-ticks``, into a new stream.
2. ``--rounds`` times, alternately, each in a fresh process of its own and reading the whole
   stream with a new durable consumer:
   - the baseline: a raw nats-py loop that fetches 256 messages, acknowledges the last
     (AckPolicy.ALL) and decodes nothing;
   - ``mdp run --source nats`` (one worker, the defaults: checkpoint every second, 1m bars into
     SQLite), timed by its own summary (``ingest_s``, less the 2 s idle timeout that ends it).

``--raw-uvloop`` also runs the raw loop on uvloop's event loop, as the worker runs (uvloop comes
with the nats extra), and prints the worker's ratio to that too: how much of the gap is the
work the worker does rather than the event loop it runs on. ``--raw-pull`` also runs a loop that
fetches as the worker does (its ``Puller``, on uvloop, 400 messages a fetch) and decodes
nothing, and prints the worker's ratio to it (``x pull``): what decoding, bars and the store
cost beyond taking the messages in.

Every process starts cold, as a user's does; the table shows each round and the medians. CPU
seconds and peak RSS are each child's own (``os.wait4``: the worker's include its start-up),
with polars' default thread pool. Each round also runs the worker on an empty stream: its CPU
is the start-up and the idle wait alone, and the worker's CPU less it (``ingest cpu``) is what
taking the ticks in cost, beside the raw loop's. Floor: 200,000 ticks/s per worker with batched
messages, and within 2x of the raw loop. The stream is deleted afterwards.

When the NATS server runs on this machine, ``srv cpu`` is its CPU during each child's run, read
from ``/proc``: it shares the cores with the client. ``least x`` is the ratio the CPU alone
allows: the worker's ingest CPU plus the server's during it, spread perfectly over every core,
against the raw loop's wall time. A floor below it cannot be met by overlapping work better,
only by doing less of it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench_instruments import Measured, mdp_argv, run_child

from market_data_pipeline import eventloop

IDLE_S = 2.0  # the worker ends after this long without a message; not part of its work


def server_pid() -> int | None:
    """The pid of a nats-server on this machine whose CPU can be read, or None."""
    for entry in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if entry.name.isdigit() and (entry / "comm").read_text().strip() == "nats-server":
                return int(entry.name)
    return None


def process_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far (0.0 without one)."""
    if pid is None:
        return 0.0
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


async def publish(url: str, stream: str, prefix: str, ticks: int, batch_ticks: int) -> float:
    from market_data_pipeline.publish import publish_source
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


async def raw_loop(url: str, stream: str, messages: int, durable: str) -> float:
    import nats
    import nats.js.api as api

    nc = await nats.connect(url)
    js = nc.jetstream()
    config = api.ConsumerConfig(
        durable_name=durable, ack_policy=api.AckPolicy.ALL, max_ack_pending=200_000
    )
    await js.add_consumer(stream, config)
    sub = await js.pull_subscribe_bind(durable, stream)
    t0 = time.perf_counter()
    seen = 0
    while seen < messages:
        msgs = await sub.fetch(256, timeout=5)
        seen += len(msgs)
        await msgs[-1].ack()
    elapsed = time.perf_counter() - t0
    await nc.close()
    return elapsed


async def pull_loop(url: str, stream: str, messages: int, durable: str) -> float:
    """The raw loop with the worker's own way of fetching (``Puller``) instead of nats-py's."""
    import nats
    import nats.js.api as api

    from market_data_pipeline.sources.nats.pull import Puller

    nc = await nats.connect(url)
    config = api.ConsumerConfig(
        durable_name=durable, ack_policy=api.AckPolicy.ALL, max_ack_pending=200_000
    )
    await nc.jetstream().add_consumer(stream, config)
    puller = Puller(nc, stream, durable)
    await puller.start()
    t0 = time.perf_counter()
    seen = 0
    while seen < messages:
        msgs = await puller.fetch(min(400, messages - seen), timeout=5)
        seen += len(msgs)
        await msgs[-1].ack()
    elapsed = time.perf_counter() - t0
    await nc.close()
    return elapsed


async def delete_streams(url: str, names: list[str]) -> None:
    import nats

    nc = await nats.connect(url)
    js = nc.jetstream()
    for name in names:
        with contextlib.suppress(Exception):
            await js.delete_stream(name)
    await nc.close()


def raw_child(
    url: str, stream: str, messages: int, durable: str, uvloop: bool = False, pull: bool = False
) -> tuple[float, Measured]:
    argv = [sys.executable, __file__, "--url", url, "--raw-loop", stream, str(messages), durable]
    argv += ["--uvloop"] if uvloop else []
    argv += ["--pull"] if pull else []
    measured = run_child(argv)
    if "seconds" not in measured.out:
        raise SystemExit(f"raw loop failed: {measured.out}")
    return float(measured.out["seconds"]), measured


def mdp_child(url: str, stream: str, durable: str, db: Path, ticks: int) -> tuple[float, Measured]:
    argv = mdp_argv(
        "--source", "nats", "--nats-url", url, "--stream", stream, "--durable", durable,
        "--sink", f"sqlite:///{db}", "--idle-timeout", str(IDLE_S),
    )  # fmt: skip
    measured = run_child(argv)
    out = measured.out
    if out.get("error") or out.get("ticks_admitted") != ticks:
        raise SystemExit(f"mdp run failed: {out.get('error')} ({out.get('ticks_admitted')} ticks)")
    return float(out["ingest_s"]) - IDLE_S, measured


async def create_empty(url: str, stream: str) -> None:
    import nats

    nc = await nats.connect(url)
    await nc.jetstream().add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
    await nc.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=5_000_000)
    parser.add_argument("--batch-ticks", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--url", default="nats://127.0.0.1:4222")
    parser.add_argument("--raw-uvloop", action="store_true", help="also the raw loop on uvloop")
    parser.add_argument("--raw-loop", nargs=3, metavar=("STREAM", "MESSAGES", "DURABLE"),
                        help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("--raw-pull", action="store_true", help="also a loop fetching as mdp does")
    parser.add_argument("--uvloop", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pull", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_loop:  # a child: the baseline in a process of its own
        stream, messages, durable = args.raw_loop
        loop_of = pull_loop if args.pull else raw_loop
        loop = loop_of(args.url, stream, int(messages), durable)
        seconds = eventloop.run(loop, source="nats" if args.uvloop or args.pull else None)
        print(json.dumps({"seconds": seconds}))
        return
    stream = f"MDPBENCH_{uuid.uuid4().hex[:8].upper()}"
    empty = f"{stream}_EMPTY"
    tmp = Path(tempfile.mkdtemp(prefix="mdp-bench-"))
    messages = -(-args.ticks // 5 // args.batch_ticks) * 5
    ticks = args.ticks
    try:
        pub_s = asyncio.run(publish(args.url, stream, stream.lower(), ticks, args.batch_ticks))
        asyncio.run(create_empty(args.url, empty))
        print(f"{ticks:,} ticks in {messages:,} Arrow messages of {args.batch_ticks} ticks; "
              f"mdp publish: {ticks / pub_s:,.0f} ticks/s")  # fmt: skip
        uv_head = f"{'x uv':>6}" if args.raw_uvloop else ""
        uv_head += f"{'x pull':>7}" if args.raw_pull else ""
        print(f"{'round':<7}{'raw ticks/s':>13}{'cpu s':>7}{'srv cpu':>8}{'mdp ticks/s':>13}"
              f"{'cpu s':>7}{'idle cpu':>9}{'ingest cpu':>11}{'srv cpu':>8}{'RSS MB':>8}"
              f"{'x raw':>7}{'least x':>8}{uv_head}{'load':>6}")  # fmt: skip
        raws, mdps, uvs, pulls, leasts = [], [], [], [], []
        server, cores = server_pid(), os.cpu_count() or 1
        for n in range(1, args.rounds + 1):
            srv0 = process_cpu_s(server)
            raw_s, raw = raw_child(args.url, stream, messages, f"raw{n}")
            srv1 = process_cpu_s(server)
            mdp_s, mdp = mdp_child(args.url, stream, f"mdp{n}", tmp / f"nats{n}.db", ticks)
            srv2 = process_cpu_s(server)
            _, idle = mdp_child(args.url, empty, f"idle{n}", tmp / f"idle{n}.db", 0)
            raws.append(raw_s)
            mdps.append(mdp_s)
            ingest_cpu = mdp.cpu_s - idle.cpu_s
            leasts.append((ingest_cpu + srv2 - srv1) / cores / raw_s)
            uv_cell = ""
            if args.raw_uvloop:
                uvs.append(raw_child(args.url, stream, messages, f"uv{n}", uvloop=True)[0])
                uv_cell = f"{mdp_s / uvs[-1]:>6.2f}"
            if args.raw_pull:
                pulls.append(raw_child(args.url, stream, messages, f"pull{n}", pull=True)[0])
                uv_cell += f"{mdp_s / pulls[-1]:>7.2f}"
            print(f"{n:<7}{ticks / raw_s:>13,.0f}{raw.cpu_s:>7.2f}{srv1 - srv0:>8.2f}"
                  f"{ticks / mdp_s:>13,.0f}{mdp.cpu_s:>7.2f}{idle.cpu_s:>9.2f}{ingest_cpu:>11.2f}"
                  f"{srv2 - srv1:>8.2f}{mdp.rss_mb:>8,.0f}{mdp_s / raw_s:>7.2f}"
                  f"{leasts[-1]:>8.2f}{uv_cell}{os.getloadavg()[0]:>6.1f}")  # fmt: skip
    finally:
        asyncio.run(delete_streams(args.url, [stream, f"{stream}_DLQ", empty, f"{empty}_DLQ"]))
    raw_m, mdp_m = statistics.median(raws), statistics.median(mdps)
    # The machine drifts: each round's ratio compares neighbours in time, so its median is the
    # figure to go by.
    ratio = statistics.median(mdp / raw for mdp, raw in zip(mdps, raws, strict=True))
    uv_ratio = ""
    if uvs:
        uv_ratio = f"{statistics.median(m / u for m, u in zip(mdps, uvs, strict=True)):>6.2f}"
    if pulls:
        uv_ratio += f"{statistics.median(m / p for m, p in zip(mdps, pulls, strict=True)):>7.2f}"
    least = statistics.median(leasts)
    print(f"{'median':<7}{ticks / raw_m:>13,.0f}{'':>15}{ticks / mdp_m:>13,.0f}{'':>35}"
          f"{ratio:>7.2f}{least:>8.2f}{uv_ratio}")  # fmt: skip
    print("(worker CPU includes its start-up; its wall time excludes start-up and the idle "
          f"timeout) load average {os.getloadavg()[0]:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
