"""Benchmark: the 4-release x 1-Python contract matrix, uv cells against plain venv + pip cells.

Run: .venv/bin/python bench/bench_contracts_matrix.py [--jobs 2] [--skip-pip]

Three runs of the same cells (Core 1.2.0, 1.2.11, 1.2.30, latest on this Python), each cell
building its environment and running the contract suite, ``--jobs`` cells at a time:

  uv, refreshed   environments left by an earlier run are refreshed in place (what
                  ``mdp contracts matrix`` does on a developer's machine)
  uv, fresh       every environment built from nothing, package cache warm
  pip, fresh      ``python -m venv`` + ``pip install`` with the same constraint on Core, pip's
                  cache warm (a first untimed run warms it)

Prints wall time per run, the setup time per cell, and the ratios (floor: uv fresh setup at
least 5x faster than pip's; the refreshed matrix within 30 s).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from market_data_contracts import envs, matrix
from market_data_contracts.settings import load_settings

CORES = ("1.2.0", "1.2.11", "1.2.30", "latest")
PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"


def run_uv(out: Path, jobs: int, fresh: bool) -> tuple[float, list[float], bool]:
    settings = load_settings()
    if fresh and (out / "envs").exists():
        shutil.rmtree(out / "envs")
    cells = matrix.plan_cells(CORES, [PYTHON])
    started = time.perf_counter()
    results = matrix.run_matrix(settings, cells, out, jobs=jobs)
    elapsed = time.perf_counter() - started
    return elapsed, [r.setup_s for r in results], matrix.matrix_ok(results)


def _pip_cell(core: str, out: Path) -> tuple[float, bool]:
    settings = load_settings()
    env = out / f"pip-{core}"
    if env.exists():
        shutil.rmtree(env)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    pip = [
        str(env / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]
    subprocess.run([*pip, envs.core_requirement(core)], check=True)
    installed = envs.installed_core(env / "bin" / "python")
    constraints = env / "constraints.txt"
    constraints.write_text(f"market-data-core=={installed}\n")
    project = f"{settings.root}[{','.join(settings.extras)}]"
    subprocess.run([*pip, "-c", str(constraints), "-e", project], check=True)
    envs.verify_core(env / "bin" / "python", installed)
    setup = time.perf_counter() - started
    done = subprocess.run(
        [
            str(env / "bin" / "python"),
            "-m",
            "pytest",
            settings.suite,
            "-m",
            "contracts",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=settings.root,
        capture_output=True,
        check=False,
    )
    return setup, done.returncode == 0


def run_pip(out: Path, jobs: int) -> tuple[float, list[float], bool]:
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda core: _pip_cell(core, out), CORES))
    return time.perf_counter() - started, [s for s, _ in results], all(ok for _, ok in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--skip-pip", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mdp-bench-") as tmp:
        out = Path(tmp)
        run_uv(out / "uv", args.jobs, fresh=True)  # warm uv's cache and leave environments
        rows = [("uv, refreshed", *run_uv(out / "uv", args.jobs, fresh=False))]
        rows.append(("uv, fresh", *run_uv(out / "uv", args.jobs, fresh=True)))
        if not args.skip_pip:
            run_pip(out / "pip", args.jobs)  # warm pip's cache
            rows.append(("pip, fresh", *run_pip(out / "pip", args.jobs)))
    print(f"matrix: Core {', '.join(CORES)} x Python {PYTHON}, {args.jobs} cells at a time")
    print(f"{'run':<15} {'wall s':>8} {'setup s/cell (median)':>22}  all passed")
    for name, wall, setups, ok in rows:
        print(f"{name:<15} {wall:8.1f} {statistics.median(setups):22.2f}  {ok}")
    timings = {name: (wall, statistics.median(setups)) for name, wall, setups, _ in rows}
    if "pip, fresh" in timings:
        setup_ratio = timings["pip, fresh"][1] / timings["uv, fresh"][1]
        wall_ratio = timings["pip, fresh"][0] / timings["uv, fresh"][0]
        print(f"setup: uv {setup_ratio:.1f}x faster than venv+pip (floor 5x)")
        print(f"whole matrix incl. suite: uv {wall_ratio:.1f}x faster")
    print(f"refreshed matrix: {timings['uv, refreshed'][0]:.1f} s (target <= 30 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
