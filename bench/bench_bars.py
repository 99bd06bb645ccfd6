"""Benchmark the bar engine: ns per tick for big and small batches against a one-shot group_by.

Run: ``.venv/bin/python bench/bench_bars.py [--ticks N]``. The baseline (the ceiling) is one plain
polars ``group_by`` over all ticks at once, with no state, watermark or lateness; the ratios say how
far the engine is from it. Set ``POLARS_MAX_THREADS=1`` to measure on one core.

``--activity`` measures activity bars instead: 5M trades (``--activity-ticks``) at 10 and 10,000
symbols, 1000-tick and 100,000-volume bars beside 1m time bars of the same ticks, as CPU seconds
(process time: every thread of this process) and the ratio to the 1m bars (the floor: 1.5x).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import polars as pl

from market_data_pipeline.aggregation.builder import BarEngine
from market_data_pipeline.aggregation.engines import BarEngines
from market_data_pipeline.aggregation.resolution import parse_resolutions

START_NS = 1_700_000_000_000_000_000
SYMBOLS = 10
RATE_PER_S = 100  # ticks per second of event time, all symbols together
JITTER_NS = 200_000_000  # out-of-order arrival, well inside the grace
GRACE_NS = 1_000_000_000


def make_ticks(n: int, seed: int = 7, symbols: int = SYMBOLS) -> pl.DataFrame:
    """Return ``n`` ticks over ``symbols`` symbols, slightly out of order."""
    rng = np.random.default_rng(seed)
    step = 1_000_000_000 // RATE_PER_S
    ts = START_NS + np.arange(n, dtype=np.int64) * step + rng.integers(0, JITTER_NS, n)
    names = np.array([f"SYM{i:02d}" for i in range(symbols)])
    return pl.DataFrame(
        {
            "symbol": names[rng.integers(0, symbols, n)],
            "ts_ns": ts,
            "price": 100.0 + rng.standard_normal(n).cumsum() * 0.01,
            "size": rng.integers(0, 500, n).astype(np.float64),
        }
    )


def by_symbol_files(ticks: pl.DataFrame) -> pl.DataFrame:
    """Reorder as a glob of one-file-per-symbol replays: every symbol restarts in the past."""
    return ticks.sort("symbol", maintain_order=True)


def log_fetch(ticks: pl.DataFrame, per_message: int = 1_000) -> pl.DataFrame:
    """Reorder as a fetch from a log with one subject per symbol (NATS): each symbol's ticks in
    time order, in messages of about ``per_message`` ticks of one symbol that interleave."""
    fetch = pl.int_range(pl.len()) // (per_message * SYMBOLS)
    return ticks.sort("ts_ns").sort(fetch, "symbol", maintain_order=True)


def run_engine(ticks: pl.DataFrame, batch: int, resolutions: str) -> float:
    """Feed ``ticks`` in batches of ``batch`` rows; return seconds spent in the engine."""
    engine = BarEngine(parse_resolutions(resolutions), GRACE_NS)
    slices = [ticks.slice(i, batch) for i in range(0, ticks.height, batch)]
    start = time.perf_counter()
    rows = sum(engine.add_ticks(part).height for part in slices) + engine.flush().height
    elapsed = time.perf_counter() - start
    stats = next(iter(engine.stats().values()))
    assert stats.ticks_in == stats.ticks_in_bars + stats.ticks_late + stats.open_ticks
    assert rows > 0
    return elapsed


def run_baseline(ticks: pl.DataFrame, resolutions: str) -> float:
    """One plain group_by per resolution over all ticks: no state, no lateness, no merge."""
    start = time.perf_counter()
    for res in parse_resolutions(resolutions):
        window = (pl.col("ts_ns") - pl.col("ts_ns") % res.ns).alias("window")
        ticks.group_by("symbol", window).agg(
            pl.col("price").first().alias("open"),
            pl.col("price").max().alias("high"),
            pl.col("price").min().alias("low"),
            pl.col("price").last().alias("close"),
            pl.col("size").sum().alias("volume"),
            pl.col("price").dot(pl.col("size")).alias("pv"),
            pl.len().alias("trades"),
        )
    return time.perf_counter() - start


def best(fn: Callable[[], float], repeat: int) -> float:
    """Return the fastest of ``repeat`` runs (after one warm-up)."""
    fn()
    return min(fn() for _ in range(repeat))


def engine_cpu(ticks: pl.DataFrame, resolution: str, batch: int = 262_144) -> tuple[float, int]:
    """Feed ``ticks`` to the run's engines in batches; return (CPU seconds, bars built)."""
    engine = BarEngines(parse_resolutions(resolution), GRACE_NS)
    slices = [ticks.slice(i, batch) for i in range(0, ticks.height, batch)]
    start = time.process_time()
    rows = sum(engine.add_ticks(part).height for part in slices) + engine.flush().height
    elapsed = time.process_time() - start
    stats = engine.stats()[resolution]
    assert stats.ticks_in == stats.ticks_in_bars + stats.ticks_late + stats.open_ticks
    return elapsed, rows


def activity(n: int, repeat: int) -> None:
    """Print CPU of 1000-tick and 100,000-volume bars beside 1m bars, at 10 and 10,000 symbols."""
    print(f"polars {pl.__version__}, threads {pl.thread_pool_size()}, {n:,} trades")
    print(f"{'symbols':>8} {'resolution':>13} {'bars':>9} {'CPU s':>7} {'x 1m':>6}")
    for symbols in (10, 10_000):
        ticks = make_ticks(n, symbols=symbols)
        base = 0.0
        for resolution in ("1m", "1000tick", "100000volume"):
            runs = [engine_cpu(ticks, resolution) for _ in range(repeat)]
            cpu, rows = min(runs)
            base = base or cpu
            print(f"{symbols:8,} {resolution:>13} {rows:9,} {cpu:7.2f} {cpu / base:6.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ticks", type=int, default=1_048_576)
    parser.add_argument("--small-ticks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--activity", action="store_true", help="activity bars vs 1m bars")
    parser.add_argument("--activity-ticks", type=int, default=5_000_000)
    args = parser.parse_args()
    if args.activity:
        activity(args.activity_ticks, args.repeat)
        return
    ticks = make_ticks(args.ticks)
    small = ticks.head(args.small_ticks)
    print(f"polars {pl.__version__}, threads {pl.thread_pool_size()}, {SYMBOLS} symbols")
    print(f"{'case':44} {'ns/tick':>9} {'ticks/s':>12} {'x ceiling':>10}")
    cases = [
        ("big 262,144 rows, 1m", ticks, 262_144, "1m"),
        ("big 262,144 rows, 1m,5m,1h", ticks, 262_144, "1m,5m,1h"),
        ("big 262,144 rows, 1m, per-symbol files", by_symbol_files(ticks), 262_144, "1m"),
        ("big 262,144 rows, 1m, log fetch (NATS)", log_fetch(ticks), 262_144, "1m"),
        ("small 500 rows, 1m", small, 500, "1m"),
        ("small 500 rows, 1m,5m,1h", small, 500, "1m,5m,1h"),
    ]
    for name, data, batch, resolutions in cases:
        ceiling = best(partial(run_baseline, data, resolutions), args.repeat)
        took = best(partial(run_engine, data, batch, resolutions), args.repeat)
        ns = took / data.height * 1e9
        print(f"{name:44} {ns:9.1f} {data.height / took:12,.0f} {took / ceiling:10.2f}")
        print(f"{'  ceiling: one-shot group_by':44} {ceiling / data.height * 1e9:9.1f}")


if __name__ == "__main__":
    main()
