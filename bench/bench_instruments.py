"""Replays over many instruments: mdp beside a one-shot ceiling, per symbol count, format and store.

    python3 scripts/dev.py bench bench_instruments [--rows 5000000] [--symbols 10,100,1000,10000]
        [--formats parquet,csv] [--stores sqlite,postgres,memory] [--long-rows 20000000]
        [--synthetic-ticks 300000]

For each symbol count the same number of trades (``--rows``) over one trading day is written once
(cached in bench/data/) as Parquet and CSV. Each case runs in its own process, so that its CPU
time and peak RSS are its own (``os.wait4``), with polars' default thread pool:

- mdp: ``mdp run --input FILE --resolution 1m --sink STORE --json``;
- ceiling: polars reads the whole file, group-bys it into the same 1m bars in one shot and writes
  them to the same store through the same sink (one upsert).

Store ``memory`` (``memory://``) leaves the store out: its 10,000-against-10-symbol share is the
engine's and the pipeline's own scaling, which no store's write rate bounds.

Printed per case: mdp ticks/s (wall), ceiling ticks/s, the CPU ratio mdp/ceiling, bars written,
peak RSS of both. Then peak RSS of mdp over ``--rows`` against ``--long-rows`` at 1,000 symbols
(streaming: it must not grow with the file), and unthrottled synthetic runs with 2,000 symbols
(1s,1m,1h) and 5,000 symbols. Floors from the issue are checked and marked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from child_usage import run_measured

DATA = Path(__file__).resolve().parent / "data"
START_NS = 1_704_205_800 * 1_000_000_000  # 2024-01-02T14:30:00Z
DAY_NS = 23_400 * 1_000_000_000  # 6.5 hours
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class Measured:
    wall_s: float
    cpu_s: float
    rss_mb: float
    out: dict[str, Any]  # the run's --json summary


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--symbols", default="10,100,1000,10000")
    parser.add_argument("--formats", default="parquet,csv")
    parser.add_argument("--stores", default="sqlite,postgres,memory")
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument("--long-rows", type=int, default=20_000_000, help="0 to skip")
    parser.add_argument("--synthetic-ticks", type=int, default=300_000, help="0 to skip")
    parser.add_argument("--ceiling", nargs=2, metavar=("FILE", "STORE"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--generate", nargs=3, metavar=("ROWS", "SYMBOLS", "FMT"), help=argparse.SUPPRESS
    )
    return parser.parse_args()


def generate(rows: int, symbols: int, fmt: str) -> Path:
    """Return the file of ``rows`` trades over ``symbols`` symbols, writing it once (in a child).

    The parent never loads the data: Linux counts a process's peak RSS before ``exec`` into the
    child's ``ru_maxrss``, so a large parent would inflate every child's peak.
    """
    path = DATA / f"instruments-{rows}-{symbols}.{fmt}"
    if not path.exists():
        run_child([sys.executable, __file__, "--generate", str(rows), str(symbols), fmt])
    return path


def write_trades(rows: int, symbols: int, fmt: str) -> None:
    """Write ``rows`` trades over ``symbols`` symbols, sorted by time, in ``fmt`` (a child)."""
    path = DATA / f"instruments-{rows}-{symbols}.{fmt}"
    import numpy as np
    import polars as pl

    DATA.mkdir(exist_ok=True)
    rng = np.random.default_rng(symbols)
    names = np.array([f"S{i:05d}" for i in range(symbols)])
    frame = pl.DataFrame(
        {
            "symbol": names[rng.integers(0, symbols, rows)],
            "ts": START_NS + np.sort(rng.integers(0, DAY_NS, rows)),
            "price": np.round(rng.uniform(20, 500, rows), 2),
            "size": rng.integers(1, 500, rows),
        }
    )
    tmp = path.with_suffix(".tmp")
    if fmt == "parquet":
        frame.write_parquet(tmp)
    else:
        frame.write_csv(tmp)
    tmp.rename(path)


def run_child(argv: list[str]) -> Measured:
    """Run ``argv`` (stderr to /dev/null) and return its own CPU, peak RSS and ``--json``
    output (``child_usage``: not floored at this process's RSS)."""
    used = run_measured(argv, dict(os.environ), stderr_to_null=True)
    text = used.stdout.decode()
    try:
        data = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        data = {"error": text.strip().splitlines()[-1:] or "?"}
    if used.returncode != 0:
        data["error"] = data.get("error") or f"exit {used.returncode}"
    return Measured(used.wall_s, used.cpu_s, used.rss_mb, data)


def mdp_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "market_data_pipeline.cli", "run", *args, "--json"]


def fresh_store(kind: str, args: argparse.Namespace) -> str | None:
    if kind == "memory":  # no store cost: what the engine and the pipeline cost alone
        return "memory://bench"
    if kind == "sqlite":
        db = DATA / "instruments.db"
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{db}"
    try:
        import psycopg

        with psycopg.connect(args.postgres, autocommit=True, connect_timeout=3) as conn:
            conn.execute("DROP TABLE IF EXISTS bars")
        return str(args.postgres)
    except Exception as exc:  # a benchmark reports and moves on
        print(f"PostgreSQL skipped: {exc}")
        return None


def ceiling(path: Path, store: str) -> None:
    """The one-shot baseline (run in a child): read all, group-by into 1m bars, write them."""
    import asyncio

    import polars as pl

    from market_data_pipeline.sinks import open_sink

    frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path)
    minute = 60 * 1_000_000_000
    bars = (
        frame.sort("ts")
        .group_by("symbol", (pl.col("ts") - pl.col("ts") % minute).alias("ts_ns"))
        .agg(
            pl.col("price").first().alias("open"),
            pl.col("price").max().alias("high"),
            pl.col("price").min().alias("low"),
            pl.col("price").last().alias("close"),
            pl.col("size").sum().cast(pl.Float64).alias("volume"),
            (pl.col("price").dot(pl.col("size")) / pl.col("size").sum()).alias("vwap"),
            pl.len().cast(pl.Int64).alias("trades"),
        )
        .select(
            "symbol",
            pl.lit("1m").alias("resolution"),
            "ts_ns",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "vwap",
            "trades",
        )
    )

    async def write() -> None:
        sink = open_sink(store, transactional=True)
        await sink.open()
        await sink.write_frame(bars)
        await sink.close(commit=True)

    asyncio.run(write())
    print(json.dumps({"bars_written": bars.height}))


def replay_table(args: argparse.Namespace) -> dict[tuple[str, str, int], float]:
    rates: dict[tuple[str, str, int], float] = {}
    print(
        f"\n{'symbols':>8} {'format':<8}{'store':<9}{'mdp ticks/s':>13}{'ceiling t/s':>13}"
        f"{'CPU ratio':>10}{'bars':>11}{'mdp RSS':>9}{'ceil RSS':>9}  floor"
    )
    for symbols in [int(s) for s in args.symbols.split(",")]:
        for fmt in args.formats.split(","):
            path = generate(args.rows, symbols, fmt)
            for kind in args.stores.split(","):
                store = fresh_store(kind, args)
                if store is None:
                    continue
                mdp = run_child(
                    mdp_argv("--input", str(path), "--resolution", "1m", "--sink", store)
                )
                store = fresh_store(kind, args)
                assert store is not None
                base = run_child([sys.executable, __file__, "--ceiling", str(path), store])
                failed = mdp.out.get("error") or base.out.get("error")
                if failed or not mdp.out:
                    print(f"{symbols:>8} {fmt:<8}{kind:<9} FAILED: {failed}")
                    continue
                ratio = mdp.cpu_s / base.cpu_s
                rates[(fmt, kind, symbols)] = args.rows / mdp.wall_s
                mark = "ok" if ratio <= 2 else "UNDER (CPU > 2x ceiling)"
                print(
                    f"{symbols:>8} {fmt:<8}{kind:<9}{args.rows / mdp.wall_s:>13,.0f}"
                    f"{args.rows / base.wall_s:>13,.0f}{ratio:>10.2f}"
                    f"{mdp.out.get('bars_written', 0):>11,}{mdp.rss_mb:>8.0f}M{base.rss_mb:>8.0f}M"
                    f"  {mark}"
                )
    return rates


def scaling_floor(rates: dict[tuple[str, str, int], float]) -> None:
    counts = sorted({key[2] for key in rates})
    if len(counts) < 2:
        return
    low, high = counts[0], counts[-1]
    print(f"\n{high:,} symbols against {low:,} (floor: at least 1/3 of the ticks/s)")
    for fmt, kind in sorted({key[:2] for key in rates}):
        if (fmt, kind, low) in rates and (fmt, kind, high) in rates:
            share = rates[(fmt, kind, high)] / rates[(fmt, kind, low)]
            mark = "ok" if share >= 1 / 3 else "UNDER"
            print(f"  {fmt:<8}{kind:<9}{share:>6.2f}  {mark}")


def rss_by_length(args: argparse.Namespace) -> None:
    if not args.long_rows:
        return
    print("\npeak RSS of mdp at 1,000 symbols, Parquet -> SQLite (must not grow with length)")
    for rows in (args.rows, args.long_rows):
        path = generate(rows, 1_000, "parquet")
        store = fresh_store("sqlite", args)
        assert store is not None
        run = run_child(mdp_argv("--input", str(path), "--resolution", "1m", "--sink", store))
        print(f"  {rows:>12,} rows: {run.rss_mb:>6.0f} MB, {rows / run.wall_s:>11,.0f} ticks/s")


def synthetic(args: argparse.Namespace) -> None:
    if not args.synthetic_ticks:
        return
    print("\nunthrottled synthetic runs (floor: 2,000 symbols at 1s,1m,1h >= 100,000 ticks/s)")
    for symbols, resolution in ((5, "1s,1m,1h"), (2_000, "1s,1m,1h"), (5_000, "1m")):
        store = fresh_store("sqlite", args)
        assert store is not None
        names = ",".join(f"S{i:05d}" for i in range(symbols))
        argv = mdp_argv("--symbols", names, "--ticks", str(args.synthetic_ticks))
        run = run_child([*argv, "--resolution", resolution, "--sink", store])
        rate = float(run.out.get("ticks_per_s", 0.0))
        mark = "ok" if symbols != 2_000 or rate >= 100_000 else "UNDER"
        print(
            f"  {symbols:>6,} symbols {resolution:<9} {rate:>11,.0f} ticks/s"
            f" ({args.synthetic_ticks / run.cpu_s:>9,.0f} per CPU s)  "
            f"{run.out.get('bars_written', 0):>9,} bars  CPU {run.cpu_s:6.1f} s  "
            f"RSS {run.rss_mb:5.0f} MB  {mark if symbols == 2_000 else ''}"
        )


def main() -> None:
    args = parse_args()
    if args.ceiling:
        ceiling(Path(args.ceiling[0]), args.ceiling[1])
        return
    if args.generate:
        write_trades(int(args.generate[0]), int(args.generate[1]), args.generate[2])
        return
    print(f"{args.rows:,} trades per file; polars default thread pool; load {os.getloadavg()}")
    rates = replay_table(args)
    scaling_floor(rates)
    rss_by_length(args)
    synthetic(args)
    print(f"\nload average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
