"""Replay throughput end to end, side by side with a one-shot vectorised group-by (the ceiling).

    python3 scripts/dev.py bench bench_replay [--rows 5000000] [--threads 1] [--postgres URL]

Generates (once, cached in bench/data/) a trades CSV of ``--rows`` rows over 10 symbols and one
trading day, then in the same run and with the same thread limit:

- ceiling: polars reads the whole file and group-bys it into 1m bars in one shot;
- mdp -> SQLite: ``mdp run --input FILE`` semantics (streamed chunks, rate gate, bar engine,
  write queue, transactional upsert) into a fresh SQLite file;
- mdp -> PostgreSQL: the same into PostgreSQL (``--postgres URL``, default the local test DB).

Prints ticks/s for each and the ratio to the ceiling. Floors: >= 1,000,000 ticks/s into SQLite
on one core, within 5x of the ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--threads", type=int, default=1, help="polars/arrow threads (1: one core)")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--repeat", type=int, default=2, help="runs per case; the best is shown")
    return parser.parse_args()


def generate(rows: int) -> Path:
    import numpy as np
    import polars as pl

    path = DATA / f"trades-{rows}.csv"
    if path.exists():
        return path
    DATA.mkdir(exist_ok=True)
    rng = np.random.default_rng(42)
    symbols = np.array([f"SYM{i:02d}" for i in range(10)])
    start_ms = 1_704_205_800_000  # 2024-01-02T14:30:00Z
    ts = start_ms + np.sort(rng.integers(0, 23_400_000, rows))
    frame = pl.DataFrame(
        {
            "symbol": symbols[rng.integers(0, 10, rows)],
            "ts": pl.Series(ts).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
            "price": np.round(100 + np.cumsum(rng.normal(0, 0.01, rows)), 2),
            "size": rng.integers(1, 500, rows),
        }
    )
    frame.write_csv(path, datetime_format="%Y-%m-%dT%H:%M:%S%.3fZ")
    return path


def ceiling(path: Path, reader: str) -> float:
    import polars as pl
    import pyarrow.csv as pacsv

    t0 = time.perf_counter()
    if reader == "polars":
        frame = pl.read_csv(path, try_parse_dates=True)
    else:
        table = pl.from_arrow(pacsv.read_csv(path))
        assert isinstance(table, pl.DataFrame)  # an Arrow table converts to a frame
        frame = table
    minute = pl.col("ts").dt.truncate("1m")
    bars = frame.group_by("symbol", minute).agg(
        pl.col("price").first().alias("open"),
        pl.col("price").max().alias("high"),
        pl.col("price").min().alias("low"),
        pl.col("price").last().alias("close"),
        pl.col("size").sum().alias("volume"),
        ((pl.col("price") * pl.col("size")).sum() / pl.col("size").sum()).alias("vwap"),
        pl.len().alias("trades"),
    )
    assert bars.height > 0
    return time.perf_counter() - t0


def mdp_run(path: Path, sink: str) -> tuple[float, dict[str, object]]:
    from market_data_pipeline.config import load_settings
    from market_data_pipeline.runtime import execute

    settings = load_settings(
        config_file=None, environ={}, flags={"input": str(path), "sink": sink, "resolution": "1m"}
    )
    t0 = time.perf_counter()
    report = asyncio.run(execute(settings))
    elapsed = time.perf_counter() - t0
    if report.exit_code != 0:
        sys.exit(f"run failed: {report.error}")
    return elapsed, report.as_dict()


def reset_postgres(url: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
            conn.execute("DROP TABLE IF EXISTS bars")
        return True
    except Exception as exc:  # a benchmark reports and moves on
        print(f"PostgreSQL skipped: {exc}")
        return False


def main() -> None:
    args = parse_args()
    os.environ["POLARS_MAX_THREADS"] = str(args.threads)
    import pyarrow as pa

    pa.set_cpu_count(args.threads)
    pa.set_io_thread_count(max(1, args.threads))
    path = generate(args.rows)
    print(f"file: {path.name} ({path.stat().st_size / 1e6:,.0f} MB, {args.rows:,} trades)")
    print(f"threads: {args.threads}")

    # The ceiling is the faster of two one-shot readers (polars' date parsing is slow on one core).
    by_reader = {r: min(ceiling(path, r) for _ in range(args.repeat)) for r in ("polars", "arrow")}
    best_ceiling = min(by_reader.values())
    results = [(f"ceiling: one-shot read ({r}) + group-by", t) for r, t in by_reader.items()]

    db = DATA / "bench.db"
    sqlite_times = []
    for _ in range(args.repeat):
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        elapsed, report = mdp_run(path, f"sqlite:///{db}")
        sqlite_times.append(elapsed)
    print(f"bars written: {report['bars_written']:,}, reconciled: {report['reconciled']}")
    results.append(("mdp replay -> SQLite", min(sqlite_times)))

    if not args.no_postgres and reset_postgres(args.postgres):
        pg_times = []
        for _ in range(args.repeat):
            reset_postgres(args.postgres)
            pg_times.append(mdp_run(path, args.postgres)[0])
        results.append(("mdp replay -> PostgreSQL", min(pg_times)))

    print(f"\n{'case':<40}{'seconds':>9}{'ticks/s':>14}{'x ceiling':>11}")
    for name, seconds in results:
        ratio = seconds / best_ceiling
        print(f"{name:<40}{seconds:>9.2f}{args.rows / seconds:>14,.0f}{ratio:>11.2f}")


if __name__ == "__main__":
    main()
