"""Live bar latency: how long after its window could close is a bar readable in the store?

    python3 scripts/dev.py bench bench_latency [--quick] [--seconds 20] [--rates 10000,100000]
        [--symbols 100,5000] [--stores sqlite,postgres] [--replay] [--checkpoint-interval 1]

Each case runs ``mdp run --source nats`` (``--resolution 1s,1m``) in a process of its own and,
once its consumer exists, publishes ticks in real time from this process: every ``--slice-ms``
the ticks due since the last slice, stamped with this process's wall clock (spread evenly over
the slice, symbols in turn, so every symbol ticks every ``symbols / rate`` seconds), in Arrow
messages of at most 10,000 ticks. A reader process polls the store every ``--poll-ms`` for
rows it has not seen (an increasing column the bench adds to its own table: SQLite's rowid, a
PostgreSQL ``bigserial``) and notes when each bar first showed. For every bar of a window that
closed while ticks still flowed::

    latency = first seen by the reader - (window end + grace)        (one wall clock)

It therefore includes the wait for the symbol's first tick past end + grace (at most
``symbols / rate``), the publisher's slice, the fetch, the bar engine, the write and the commit,
and up to one poll. ``--replay`` adds a ``mdp run --input FILE --speed 1 --resume`` case (the
replay's clock is its pacer's: the first row's time is the moment it was read).

Printed per case and resolution: bars measured (and expected), p50/p99/max latency in ms;
ticks/s published and taken by the worker; CPU seconds of the worker, the publisher and the
reader; the load average. The 1m columns need runs past a minute (``--seconds 150`` gives two
closed 1m windows per symbol); ``--quick`` runs 12 s cases at 10k and 100k ticks/s over 100
symbols into SQLite, 1s bars only in effect.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shlex
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from bench_instruments import POSTGRES, Measured, mdp_argv, run_child

RESOLUTIONS = {"1s": 1_000_000_000, "1m": 60_000_000_000}
MESSAGE_TICKS = 10_000  # about 400 kB of Arrow
IDLE_S = 2.0  # the worker ends this long after the last message


@dataclass
class Case:
    name: str
    rate: int
    symbols: int
    store: str  # sqlite | postgres
    replay: bool = False


@dataclass
class Published:
    ticks: int = 0
    started_ns: int = 0
    ended_ns: int = 0
    cpu_s: float = 0.0
    # ticks per (resolution, window start): a window with k ticks holds min(k, symbols) bars
    windows: dict[str, dict[int, int]] = field(default_factory=dict)


# -- the store --------------------------------------------------------------------------------
def create_table(store: str, url: str, table: str) -> None:
    """Create the bench's own bars table with an increasing column the reader polls."""
    from market_data_pipeline.sinks.schema import BarTable

    bars = BarTable(name=table)
    if store == "sqlite":
        lite = sqlite3.connect(url)
        # A rowid table (mdp's own are WITHOUT ROWID): new rows get increasing rowids.
        lite.execute(bars.create_sql("sqlite").replace(" WITHOUT ROWID", ""))
        lite.execute("PRAGMA journal_mode = WAL")
        lite.commit()
        lite.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {bars.sql}")
        conn.execute(f'DROP TABLE IF EXISTS "mdp_checkpoints_{table}"')
        conn.execute(bars.create_sql("postgresql"))
        conn.execute(f"ALTER TABLE {bars.sql} ADD COLUMN seen bigserial")
        conn.execute(f"CREATE INDEX ON {bars.sql} (seen)")


def drop_table(store: str, url: str, table: str) -> None:
    if store == "sqlite":
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP TABLE IF EXISTS "{table}"')
        conn.execute(f'DROP TABLE IF EXISTS "mdp_checkpoints_{table}"')


def sink_url(store: str, url: str) -> str:
    return f"sqlite:///{url}" if store == "sqlite" else url


def reader(store: str, url: str, table: str, stop: Path, out: Path, poll_s: float) -> None:
    """Poll for new rows until ``stop`` exists; write (resolution, ts_ns, seen_ns) to ``out``."""
    seen: list[tuple[str, Any, int]] = []
    last = 0
    if store == "sqlite":
        conn: Any = sqlite3.connect(f"file:{url}?mode=ro", uri=True, isolation_level=None)
        query = f'SELECT rowid, resolution, ts FROM "{table}" WHERE rowid > ? ORDER BY rowid'
    else:
        import psycopg

        conn = psycopg.connect(url, autocommit=True)
        query = f'SELECT seen, resolution, ts FROM "{table}" WHERE seen > %s ORDER BY seen'
    while True:
        final = stop.exists()
        rows = conn.execute(query, (last,)).fetchall()
        now = time.time_ns()
        if rows:
            last = int(rows[-1][0])
            seen.extend((res, ts, now) for _, res, ts in rows)
        if final:
            break
        time.sleep(poll_s)
    conn.close()
    frame = pl.DataFrame(
        {
            "resolution": [r for r, _, _ in seen],
            "ts_ns": [_ts_ns(ts) for _, ts, _ in seen],
            "seen_ns": [n for _, _, n in seen],
        },
        schema={"resolution": pl.String, "ts_ns": pl.Int64, "seen_ns": pl.Int64},
    )
    frame.write_parquet(out)


def _ts_ns(ts: Any) -> int:
    from datetime import datetime

    if isinstance(ts, str):  # SQLite's fixed-width UTC text
        ts = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    assert isinstance(ts, datetime)
    return int(ts.timestamp()) * 1_000_000_000 + ts.microsecond * 1_000


# -- the publisher ------------------------------------------------------------------------------
def tick_slice(
    rate: int, symbols: list[str], start_ns: int, end_ns: int, count: int, cursor: int
) -> pl.DataFrame:
    """``count`` ticks stamped evenly in (start_ns, end_ns], symbols in turn from ``cursor``."""
    ts = start_ns + ((np.arange(1, count + 1) * (end_ns - start_ns)) // count)
    index = (cursor + np.arange(count)) % len(symbols)
    return pl.DataFrame(
        {
            "symbol": pl.Series(symbols, dtype=pl.String).gather(index),
            "ts_ns": ts.astype(np.int64),
            "price": 100.0 + (ts % 1_000) / 100.0,
            "size": np.ones(count),
        }
    )


def count_windows(published: Published, ts: np.ndarray[Any, Any]) -> None:
    for label, width in RESOLUTIONS.items():
        starts, counts = np.unique(ts // width * width, return_counts=True)
        windows = published.windows.setdefault(label, {})
        for start, n in zip(starts.tolist(), counts.tolist(), strict=True):
            windows[start] = windows.get(start, 0) + n


async def publish_live(
    nats_url: str, stream: str, prefix: str, case: Case, seconds: float, slice_s: float
) -> Published:
    from market_data_pipeline.sources.nats.bodies import encode_arrow
    from market_data_pipeline.sources.nats.source import connect

    symbols = [f"S{i:05d}" for i in range(case.symbols)]
    nc = await connect(nats_url)
    js = nc.jetstream(publish_async_max_pending=4_096)
    published = Published()
    cpu0 = _self_cpu()
    pending: list[Any] = []
    started = last = time.time_ns()
    published.started_ns = started
    deadline = started + int(seconds * 1e9)
    cursor = 0
    try:
        while last < deadline:
            await asyncio.sleep(max(0.0, (last + slice_s * 1e9 - time.time_ns()) / 1e9))
            now = min(time.time_ns(), deadline)
            count = int(case.rate * (now - started) / 1e9) - published.ticks
            if count <= 0:
                continue
            frame = tick_slice(case.rate, symbols, last, now, count, cursor)
            cursor = (cursor + count) % len(symbols)
            last = now
            for offset in range(0, count, MESSAGE_TICKS):  # a message stays under max_payload
                body = encode_arrow(frame.slice(offset, MESSAGE_TICKS))
                pending.append(await js.publish_async(f"{prefix}.live", body))
            published.ticks += count
            count_windows(published, frame["ts_ns"].to_numpy())
            if len(pending) >= 1_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await nc.close()
    published.ended_ns = last
    published.cpu_s = _self_cpu() - cpu0
    return published


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def wait_for_consumer(nats_url: str, stream: str, durable: str, limit_s: float) -> None:
    from market_data_pipeline.sources.nats.source import connect

    nc = await connect(nats_url)
    js = nc.jetstream()
    deadline = time.monotonic() + limit_s
    try:
        while True:
            try:
                await js.consumer_info(stream, durable)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise SystemExit(f"the worker never created consumer {durable}") from None
                await asyncio.sleep(0.05)
    finally:
        await nc.close()


async def make_stream(nats_url: str, stream: str, prefix: str) -> None:
    from market_data_pipeline.publish import ensure_stream
    from market_data_pipeline.sources.nats.source import connect

    nc = await connect(nats_url)
    await ensure_stream(nc.jetstream(), stream, prefix)
    await nc.close()


async def delete_streams(nats_url: str, names: list[str]) -> None:
    from market_data_pipeline.sources.nats.source import connect

    nc = await connect(nats_url)
    js = nc.jetstream()
    for name in names:
        with contextlib.suppress(Exception):
            await js.delete_stream(name)
    await nc.close()


# -- a case ---------------------------------------------------------------------------------------
@dataclass
class Result:
    case: Case
    published: Published
    worker: Measured
    reader: Measured
    seen: pl.DataFrame
    grace_ns: int
    origin_ns: int = 0  # added to published times: a replay's event time -> wall clock


def run_live(case: Case, args: argparse.Namespace, tmp: Path) -> Result:
    tag = uuid.uuid4().hex[:8]
    stream, durable, table = f"LAT_{tag.upper()}", f"lat{tag}", f"lat_{tag}"
    prefix = f"lat{tag}"
    url = str(tmp / f"{tag}.db") if case.store == "sqlite" else args.postgres
    create_table(case.store, url, table)
    asyncio.run(make_stream(args.nats_url, stream, prefix))
    stop, out = tmp / f"{tag}.stop", tmp / f"{tag}.parquet"
    argv = mdp_argv(
        "--source", "nats", "--nats-url", args.nats_url, "--stream", stream, "--durable", durable,
        "--sink", sink_url(case.store, url), "--table", table, "--resolution", "1s,1m",
        "--grace", args.grace, "--idle-timeout", str(IDLE_S),
        "--checkpoint-interval", str(args.checkpoint_interval),
    )  # fmt: skip
    reader_argv = [
        sys.executable, __file__, "--reader", case.store, url, table, str(stop), str(out),
        "--poll-ms", str(args.poll_ms),
    ]  # fmt: skip
    if args.wrap:  # e.g. a profiler: "py-spy record -o worker.txt -f raw --idle --"
        # It may print to stdout too: the summary is the line that is a JSON object.
        script = f"{shlex.join([*shlex.split(args.wrap), *argv])} | sed -n '/^{{/,/^}}/p'"
        argv = ["/bin/sh", "-c", script]

    async def drive() -> tuple[Published, Measured, Measured]:
        worker = asyncio.create_task(asyncio.to_thread(run_child, argv))
        polling = asyncio.create_task(asyncio.to_thread(run_child, reader_argv))
        try:
            await wait_for_consumer(args.nats_url, stream, durable, 30.0)
            published = await publish_live(
                args.nats_url, stream, prefix, case, args.seconds, args.slice_ms / 1e3
            )
            measured = await worker
        finally:
            stop.touch()
        return published, measured, await polling

    try:
        published, worker, polled = asyncio.run(drive())
    finally:
        asyncio.run(delete_streams(args.nats_url, [stream, f"{stream}_DLQ"]))
        drop_table(case.store, url, table)
    if worker.out.get("error") or worker.out.get("ticks_admitted") != published.ticks:
        taken = worker.out.get("ticks_admitted")
        failed = f"{worker.out.get('error')} ({taken} of {published.ticks} ticks)"
        raise SystemExit(f"{case.name}: worker failed: {failed}")
    return Result(case, published, worker, polled, pl.read_parquet(out), grace_ns(args.grace))


def grace_ns(text: str) -> int:
    from market_data_pipeline.aggregation.resolution import parse_duration_ns

    return parse_duration_ns(text, what="grace")


# -- the replay case ------------------------------------------------------------------------------
def write_replay_file(case: Case, seconds: float, path: Path) -> Published:
    """A file of ``seconds`` of ticks at ``case.rate``, as the live publisher would stamp them."""
    symbols = [f"S{i:05d}" for i in range(case.symbols)]
    start = 1_704_205_800 * 1_000_000_000  # 2024-01-02T14:30:00Z
    count = int(case.rate * seconds)
    frame = tick_slice(case.rate, symbols, start, start + int(seconds * 1e9), count, 0)
    stamped = pl.col("ts_ns").cast(pl.Datetime("ns", "UTC")).alias("ts")
    frame.select("symbol", stamped, "price", "size").write_parquet(path)
    published = Published(ticks=count, started_ns=start, ended_ns=int(frame["ts_ns"][-1]))
    count_windows(published, frame["ts_ns"].to_numpy())
    return published


def replay_child(flags_json: str) -> None:
    """Run a paced replay in this process; print its summary and the pacer's anchor.

    The pacer anchors its clock on the first row it sees: the wall time of that moment maps the
    file's event times to the wall clock the reader uses.
    """
    from market_data_pipeline.config import load_settings
    from market_data_pipeline.runtime import execute
    from market_data_pipeline.sources.replay import pacing

    anchor: dict[str, int] = {}
    monotonic = pacing._now

    def now() -> float:
        anchor.setdefault("wall_ns", time.time_ns())
        return monotonic()

    pacing._now = now
    settings = load_settings(config_file=None, environ={}, flags=json.loads(flags_json))
    report = asyncio.run(execute(settings)).as_dict()
    print(json.dumps({**report, "anchor_wall_ns": anchor.get("wall_ns", 0)}, default=str))


def run_replay(case: Case, args: argparse.Namespace, tmp: Path) -> Result:
    tag = uuid.uuid4().hex[:8]
    table = f"lat_{tag}"
    url = str(tmp / f"{tag}.db") if case.store == "sqlite" else args.postgres
    path = tmp / f"{tag}-ticks.parquet"
    published = write_replay_file(case, args.seconds, path)
    create_table(case.store, url, table)
    stop, out = tmp / f"{tag}.stop", tmp / f"{tag}.parquet"
    flags = {
        "input": [str(path)], "speed": 1.0, "resume": True, "sink": sink_url(case.store, url),
        "table": table, "resolution": "1s,1m", "grace": args.grace,
        "checkpoint_interval": args.checkpoint_interval,
    }  # fmt: skip
    reader_argv = [
        sys.executable, __file__, "--reader", case.store, url, table, str(stop), str(out),
        "--poll-ms", str(args.poll_ms),
    ]  # fmt: skip

    async def drive() -> tuple[Measured, Measured]:
        polling = asyncio.create_task(asyncio.to_thread(run_child, reader_argv))
        try:
            cpu0 = _self_cpu()
            argv = [sys.executable, __file__, "--replay-child", json.dumps(flags)]
            worker = await asyncio.to_thread(run_child, argv)
            published.cpu_s = _self_cpu() - cpu0
        finally:
            stop.touch()
        return worker, await polling

    try:
        worker, polled = asyncio.run(drive())
    finally:
        drop_table(case.store, url, table)
    if worker.out.get("error") or worker.out.get("ticks_admitted") != published.ticks:
        raise SystemExit(f"{case.name}: replay failed: {worker.out.get('error')}")
    origin = int(worker.out["anchor_wall_ns"]) - published.started_ns
    seen = pl.read_parquet(out)
    return Result(case, published, worker, polled, seen, grace_ns(args.grace), origin)


# -- the table ------------------------------------------------------------------------------------
def latencies(result: Result, label: str) -> tuple[list[float], int]:
    """Latency in ms of every bar of ``label`` whose window closed while ticks flowed, and the
    number of such bars expected."""
    width = RESOLUTIONS[label]
    pub = result.published
    # A window closes while ticks flow when every symbol ticks after its end + grace.
    cycle_ns = int(1e9 * result.case.symbols / result.case.rate)
    last_end = pub.ended_ns - result.grace_ns - cycle_ns
    windows = {s: n for s, n in pub.windows.get(label, {}).items() if s + width <= last_end}
    expected = sum(min(n, result.case.symbols) for n in windows.values())
    seen = result.seen.filter(
        (pl.col("resolution") == label) & pl.col("ts_ns").is_in(list(windows))
    )
    due = pl.col("ts_ns") + width + result.grace_ns + result.origin_ns
    ms = seen.select(((pl.col("seen_ns") - due) / 1e6).alias("ms"))["ms"].to_list()
    return ms, expected


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def print_result(result: Result) -> None:
    case, pub = result.case, result.published
    wall_s = (pub.ended_ns - pub.started_ns) / 1e9
    cells = []
    for label in RESOLUTIONS:
        ms, expected = latencies(result, label)
        if ms:
            cells.append(f"{len(ms):>7,}/{expected:<7,}{quantile(ms, 0.5):>7.0f}"
                         f"{quantile(ms, 0.99):>7.0f}{max(ms):>7.0f}")  # fmt: skip
        else:
            cells.append(f"{0:>7}/{expected:<7,}{'-':>7}{'-':>7}{'-':>7}")
    admitted = int(result.worker.out.get("ticks_admitted", 0))
    print(f"{case.name:<26}{''.join(cells)}{pub.ticks / wall_s:>10,.0f}{admitted / wall_s:>10,.0f}"
          f"{result.worker.cpu_s:>7.1f}{pub.cpu_s:>6.1f}{result.reader.cpu_s:>6.1f}"
          f"{os.getloadavg()[0]:>6.2f}", flush=True)  # fmt: skip


def cases(args: argparse.Namespace) -> list[Case]:
    found = []
    for store in args.stores.split(","):
        for symbols in (int(s) for s in args.symbols.split(",")):
            for rate in (int(r) for r in args.rates.split(",")):
                name = f"nats {rate // 1000}k/s {symbols} sym {store[:2]}"
                found.append(Case(name, rate, symbols, store))
            if args.replay:
                rate = int(args.rates.split(",")[0])
                name = f"replay x1 {rate // 1000}k/s {symbols} {store[:2]}"
                found.append(Case(name, rate, symbols, store, replay=True))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--rates", default="10000,100000,500000")
    parser.add_argument("--symbols", default="100,5000")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--replay", action="store_true", help="add a --speed 1 replay per store")
    parser.add_argument("--grace", default="1s")
    parser.add_argument("--checkpoint-interval", type=float, default=1.0)
    parser.add_argument("--slice-ms", type=float, default=10.0)
    parser.add_argument("--poll-ms", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    parser.add_argument("--wrap", help="a command the worker runs under (a profiler)")
    parser.add_argument("--reader", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--replay-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reader:
        store, url, table, stop, out = args.reader
        reader(store, url, table, Path(stop), Path(out), args.poll_ms / 1e3)
        return
    if args.replay_child:
        replay_child(args.replay_child)
        return
    if args.quick:
        args.seconds, args.rates, args.symbols, args.stores = 12.0, "10000,100000", "100", "sqlite"
    tmp = Path(tempfile.mkdtemp(prefix="mdp-bench-"))
    print(f"{args.seconds:g} s per case, grace {args.grace}, checkpoint interval "
          f"{args.checkpoint_interval:g} s, publisher slice {args.slice_ms:g} ms, reader poll "
          f"{args.poll_ms:g} ms; latency in ms past window end + grace")  # fmt: skip
    head = "".join(f"{label + ' bars':>15}{'p50':>7}{'p99':>7}{'max':>7}" for label in RESOLUTIONS)
    print(f"{'case':<26}{head}{'pub/s':>10}{'taken/s':>10}{'cpu w':>7}{'pub':>6}{'rdr':>6}"
          f"{'load':>6}")  # fmt: skip
    p99s: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for case in cases(args):
            result = (run_replay if case.replay else run_live)(case, args, tmp)
            print_result(result)
            ms, _ = latencies(result, "1s")
            if ms:
                p99s.setdefault(case.name, []).append(quantile(ms, 0.99))
    if args.rounds > 1:
        for name, values in p99s.items():
            print(f"{name:<26} 1s p99 median of {len(values)}: {statistics.median(values):.0f} ms")


if __name__ == "__main__":
    main()
