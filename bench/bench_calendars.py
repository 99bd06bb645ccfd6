"""Benchmark calendar windows in the bar engine against epoch windows in the same run.

Run: ``.venv/bin/python bench/bench_calendars.py [--ticks N] [--days D]``. The same ticks (spread
evenly over D days, 10 symbols, in frames of 65,536) go through the engine three ways:

- baseline: 1m, 1h, 1d epoch-aligned, the engine with no windows given;
- windows UTC: the same through ``calendars.Windows`` in UTC, as every run now goes;
- zone: 1m, 1h, 1d (and 1w, 1mo) in America/New_York (local midnights, Monday weeks, months);
- session: 1m, 1h, 1d on XNYS with --align session (sessions, outside-session filter), without
  and with the gap tracker (``--calendar XNYS --align session`` runs it).

Prints wall and CPU seconds, ns per tick, the ratio to the baseline, peak RSS and load average.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import time

import numpy as np
import polars as pl

from market_data_pipeline.aggregation.builder import BarEngine
from market_data_pipeline.aggregation.calendars import TimeFrame, make_windows
from market_data_pipeline.aggregation.gaps import GapTracker
from market_data_pipeline.aggregation.resolution import parse_resolutions

START_NS = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z
SYMBOLS = 10
FRAME_ROWS = 65_536


def make_ticks(n: int, days: int, seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    span = days * 86_400 * 10**9
    ts = START_NS + np.sort(rng.integers(0, span, n))
    names = np.array([f"SYM{i:02d}" for i in range(SYMBOLS)])
    return pl.DataFrame(
        {
            "symbol": names[rng.integers(0, SYMBOLS, n)],
            "ts_ns": ts,
            "price": 100.0 + rng.standard_normal(n).cumsum() * 0.01,
            "size": rng.integers(0, 500, n).astype(np.float64),
        }
    )


def run(
    ticks: pl.DataFrame, labels: str, frame: TimeFrame | None, gaps: bool
) -> tuple[float, float, int]:
    resolutions = parse_resolutions(labels)
    windows = make_windows(resolutions, frame) if frame is not None else {}
    named = {w.label: w for w in windows.values()}
    relabelled = [
        dataclasses.replace(r, label=windows[r.label].label) if windows else r for r in resolutions
    ]
    engine = BarEngine(relabelled, 1_000_000_000, windows=named or None)
    tracker = GapTracker(named, fill=False)
    wall, cpu = time.perf_counter(), time.process_time()
    bars = 0
    for offset in range(0, ticks.height, FRAME_ROWS):
        out = engine.add_ticks(ticks.slice(offset, FRAME_ROWS))
        if gaps:
            tracker.observe(out)
        bars += out.height
    out = engine.flush()
    if gaps:
        tracker.observe(out)
    bars += out.height
    return time.perf_counter() - wall, time.process_time() - cpu, bars


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=60)
    args = parser.parse_args()
    ticks = make_ticks(args.ticks, args.days)
    ny = TimeFrame(tz="America/New_York")
    xnys = TimeFrame(calendar="XNYS", align="session")
    cases = [
        ("baseline epoch 1m,1h,1d", "1m,1h,1d", None, False),
        ("windows UTC 1m,1h,1d", "1m,1h,1d", TimeFrame(), False),
        ("zone NY 1m,1h,1d", "1m,1h,1d", ny, False),
        ("zone NY 1m,1h,1d,1w,1mo", "1m,1h,1d,1w,1mo", ny, False),
        ("session XNYS 1m,1h,1d", "1m,1h,1d", xnys, False),
        ("session XNYS 1m,1h,1d +gaps", "1m,1h,1d", xnys, True),
    ]
    base = None
    print(
        f"{args.ticks:,} ticks over {args.days} days, {SYMBOLS} symbols, frames of {FRAME_ROWS:,}"
    )
    for name, labels, frame, gaps in cases:
        run(ticks.head(FRAME_ROWS), labels, frame, gaps)  # warm-up: imports, calendar load
        wall, cpu, bars = run(ticks, labels, frame, gaps)
        base = base or wall
        print(
            f"  {name:<30} wall {wall:6.2f} s  cpu {cpu:6.2f} s"
            f"  {wall / args.ticks * 1e9:6.0f} ns/tick  x{wall / base:4.2f}  {bars:,} bars"
        )
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss_mb:.0f} MiB, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
