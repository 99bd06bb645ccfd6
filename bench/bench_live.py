"""The live path: synthetic source -> rate gate -> bars -> SQLite, and rate-gate accuracy.

    python3 scripts/dev.py bench bench_live [--ticks 2000000] [--accuracy-seconds 10]

1. Unthrottled synthetic run end to end (floor: >= 200,000 ticks/s), side by side with the bare
   synthetic generator (the ceiling of this path).
2. Rate gate accuracy: the same run at 1k, 10k and 50k ticks/s for N seconds; delivered rate vs
   target (floor: within 2% at 50k ticks/s over 10 s).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any


async def generator_only(ticks: int) -> float:
    from market_data_pipeline.sources.synthetic import SyntheticSource

    source = SyntheticSource(symbols=["A", "B", "C", "D", "E"], ticks=ticks, seed=1)
    t0 = time.perf_counter()
    count = 0
    async for frame in source.batches():
        count += frame.height
    assert count == ticks
    return time.perf_counter() - t0


def run(flags: dict[str, object]) -> dict[str, Any]:
    from market_data_pipeline.config import load_settings
    from market_data_pipeline.runtime import execute

    settings = load_settings(config_file=None, environ={}, flags=flags)
    report = asyncio.run(execute(settings))
    if report.exit_code != 0:
        raise SystemExit(f"run failed: {report.error}")
    return report.as_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=2_000_000)
    parser.add_argument("--accuracy-seconds", type=float, default=10.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="mdp-bench-"))

    gen_s = asyncio.run(generator_only(args.ticks))
    report = run({"ticks": args.ticks, "sink": f"sqlite:///{tmp / 'live.db'}"})
    e2e_s = float(report["elapsed_s"])  # includes start-up and close
    print(f"{'case':<44}{'ticks/s':>14}{'x ceiling':>11}")
    print(f"{'ceiling: synthetic generator alone':<44}{args.ticks / gen_s:>14,.0f}{1.0:>11.2f}")
    name = "synthetic -> gate -> bars -> SQLite"
    print(f"{name:<44}{args.ticks / e2e_s:>14,.0f}{e2e_s / gen_s:>11.2f}")

    print(f"\nrate gate accuracy over {args.accuracy_seconds:g} s")
    print(f"{'target/s':>10}{'delivered/s':>14}{'error':>9}")
    for target in (1_000, 10_000, 50_000):
        report = run(
            {
                "rate": target,
                "duration": args.accuracy_seconds,
                "sink": f"sqlite:///{tmp / f'rate{target}.db'}",
            }
        )
        delivered = int(report["ticks_admitted"]) / float(report["ingest_s"])
        print(f"{target:>10,}{delivered:>14,.1f}{(delivered - target) / target:>+9.2%}")


if __name__ == "__main__":
    main()
