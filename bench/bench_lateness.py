"""Benchmark allowed lateness: a replay of trades of which 1% arrive up to 30 s late.

Run: ``.venv/bin/python bench/bench_lateness.py [--ticks N] [--rounds R]``. For 10 and 10,000
symbols it writes one Parquet file of ``--ticks`` trades (an hour of event time) in arrival
order, then runs ``mdp run --grace 1s -r 1m`` on it into a fresh SQLite file twice per round:
without allowed lateness (the late trades are counted late) and with ``--allowed-lateness 60s``
(they revise their bars). Each run is its own process, the two alternate, and the table gives
the median CPU time (user + system) and peak RSS of the process, the late, revising and
rewritten counts of its summary, and the CPU ratio (the floor: within 1.3x). The load average
is printed before and after: the numbers mean little on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from child_usage import run_measured

START_NS = 1_704_186_000 * 1_000_000_000  # 2024-01-02T09:00:00Z
SPAN_S = 3_600
LATE_SHARE = 0.01
LATE_MAX_S = 30
LATENESS = "60s"
FLOOR = 1.3
MDP = [sys.executable, "-m", "market_data_pipeline.cli"]


@dataclass(frozen=True)
class Measure:
    cpu_s: float
    rss_mib: float
    summary: dict[str, object]


def make_trades(path: Path, ticks: int, symbols: int, seed: int = 24) -> None:
    """Write ``ticks`` trades over ``symbols`` symbols in arrival order (1% late by <= 30 s)."""
    rng = np.random.default_rng(seed)
    ts = START_NS + np.sort(rng.integers(0, SPAN_S * 1_000_000_000, ticks))
    late = rng.random(ticks) < LATE_SHARE
    delay = np.where(late, rng.integers(0, LATE_MAX_S * 1_000_000_000, ticks), 0)
    order = np.argsort(ts + delay, kind="stable")
    names = np.array([f"S{i:05d}" for i in range(symbols)])
    frame = pl.DataFrame(
        {
            "symbol": names[rng.integers(0, symbols, ticks)][order],
            "ts": pl.Series(ts[order]).cast(pl.Datetime("ns", "UTC")),
            "price": (100.0 + rng.standard_normal(ticks).cumsum() * 0.01)[order],
            "size": rng.integers(1, 500, ticks).astype(np.float64)[order],
        }
    )
    frame.write_parquet(path)


def run_once(trades: Path, db: Path, lateness: str | None) -> Measure:
    """Run ``mdp run`` in a fresh process; return its CPU time, peak RSS and summary."""
    db.unlink(missing_ok=True)
    args = [
        *MDP,
        "run",
        "-i",
        str(trades),
        "-r",
        "1m",
        "--grace",
        "1s",
        "--sink",
        f"sqlite:///{db}",
    ]
    if lateness:
        args += ["--allowed-lateness", lateness]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDP_")}
    # child_usage: this process holds the generated trades, which would floor the child's RSS.
    used = run_measured([*args, "--json"], env)
    summary = json.loads(used.stdout)
    if used.returncode != 0 or not summary["reconciled"]:
        raise SystemExit(f"mdp run failed: {summary.get('error')}")
    return Measure(used.cpu_s, used.rss_mb, summary)


def compare(trades: Path, folder: Path, rounds: int) -> dict[str | None, list[Measure]]:
    """Alternate runs without and with allowed lateness, ``rounds`` of each."""
    runs: dict[str | None, list[Measure]] = {None: [], LATENESS: []}
    for _ in range(rounds):
        for lateness in runs:
            runs[lateness].append(run_once(trades, folder / "bench.db", lateness))
    return runs


def row(symbols: int, lateness: str | None, measures: list[Measure], base_cpu: float) -> str:
    cpu = statistics.median(m.cpu_s for m in measures)
    rss = statistics.median(m.rss_mib for m in measures)
    one: dict[str, int] = measures[0].summary["resolutions"]["1m"]  # type: ignore[index]
    lateness_info: dict[str, int] = measures[0].summary.get("lateness", {})  # type: ignore[assignment]
    ratio = cpu / base_cpu
    return (
        f"| {symbols:>6,} | {lateness or '0':>8} | {cpu:7.2f} | {ratio:5.2f}x | {rss:7.0f} |"
        f" {one['bars_built']:>9,} | {one['ticks_late']:>7,} | {one.get('revising_ticks', 0):>8,} |"
        f" {one.get('revised', 0):>7,} | {one.get('rewritten', 0):>9,} |"
        f" {lateness_info.get('peak_retained_windows', 0):>8,} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=5_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--symbols", type=int, nargs="+", default=[10, 10_000])
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{args.ticks:,} trades over {SPAN_S} s of event time, {LATE_SHARE:.0%} late by up to"
        f" {LATE_MAX_S} s; mdp run -r 1m --grace 1s into SQLite; medians of {args.rounds} rounds"
    )
    print(
        "| symbols | lateness | CPU s | ratio | RSS MiB | bars built | late | revising |"
        " revised | rewritten | retained |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for symbols in args.symbols:
            trades = folder / f"trades-{symbols}.parquet"
            make_trades(trades, args.ticks, symbols)
            runs = compare(trades, folder, args.rounds)
            base = statistics.median(m.cpu_s for m in runs[None])
            for lateness, measures in runs.items():
                print(row(symbols, lateness, measures, base))
            worst = max(worst, statistics.median(m.cpu_s for m in runs[LATENESS]) / base)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    verdict = "within" if worst <= FLOOR else "OVER"
    print(f"worst CPU ratio {worst:.2f}x: {verdict} the {FLOOR}x floor")


if __name__ == "__main__":
    main()
