"""The full NATS soak: a 2-minute live stream, 20 random ``kill -9``s of the worker, exact table.

    python3 scripts/dev.py bench soak_nats [--seconds 120] [--kills 20] [--rate 20000]

Runs ``tests/integration/nats/test_soak.py`` (whose suite default is 30 s and 6 kills) at full
length and prints its result line, the wall time, CPU seconds of the children and the load
average.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20_000.0)
    args = parser.parse_args()
    env = {
        **os.environ,
        "MDP_SOAK_S": str(args.seconds),
        "MDP_SOAK_KILLS": str(args.kills),
        "MDP_SOAK_RATE": str(args.rate),
    }
    test = "tests/integration/nats/test_soak.py"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    wall_s = time.monotonic() - started
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("soak:", "1 passed"))]
    print("\n".join(lines) or proc.stdout[-2000:])
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(
        f"wall {wall_s:.0f} s, children CPU {children.ru_utime + children.ru_stime:.0f} s, "
        f"load average {os.getloadavg()[0]:.2f}, exit {proc.returncode}"
    )
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
