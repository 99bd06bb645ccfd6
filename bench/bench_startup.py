"""Benchmark how fast ``mdp`` answers, next to a bare ``python -c pass`` in the same run.

Run: ``.venv/bin/python bench/bench_startup.py [--repeat N] [--top N]``. Each command runs N times
(default 5) in a fresh temporary directory, interleaved with the others so load drifts hit them
all alike; the table shows the median CPU seconds (user + sys of the child, from ``os.wait4``),
the median wall seconds, both as a multiple of ``python -c pass``, the exit code, and which heavy
packages (polars, pyarrow, numpy, pydantic, Core) the command imported. Then the top cumulative
entries of ``python -X importtime`` for ``mdp --help`` and for the 1,000-tick run.

Commands: ``--help``, ``-h``, a bad sink URL (``run --sink nosuch://x``), a missing input
(``run -i /nope.csv``), ``bars`` on a database file that does not exist, and a 1,000-tick
synthetic run into ``memory://``. Prints the load average before and after: on a shared
machine the multiples are steadier than the seconds. Bytecode is written first for the project's
sources, as an installed package has it: where ``PYTHONDONTWRITEBYTECODE`` is set, an editable
install would otherwise compile every module from source in every run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HEAVY = ("polars", "pyarrow", "numpy", "pydantic", "market_data_core")


@dataclass
class Case:
    """One command line and what its runs measured."""

    name: str
    argv: list[str]
    cpu_s: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)
    exit_codes: set[int] = field(default_factory=set)
    heavy: list[str] = field(default_factory=list)


def mdp_script() -> str:
    """Return the ``mdp`` console script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "mdp"
    found = str(beside) if beside.exists() else shutil.which("mdp")
    if found is None:
        sys.exit("no mdp script beside this python or on PATH: install the package first")
    return found


def cases(mdp: str, workdir: Path) -> list[Case]:
    py = sys.executable
    missing_db = f"sqlite:///{workdir / 'missing.db'}"
    return [
        Case("python -c pass", [py, "-c", "pass"]),
        Case("mdp --help", [py, mdp, "--help"]),
        Case("mdp -h", [py, mdp, "-h"]),
        Case("mdp run --sink nosuch://x", [py, mdp, "run", "--sink", "nosuch://x"]),
        Case("mdp run -i /nope.csv", [py, mdp, "run", "-i", "/nope.csv"]),
        Case("mdp bars (missing db)", [py, mdp, "bars", "-S", missing_db]),
        Case("mdp run -n 1000 -S memory://x", [py, mdp, "run", "-n", "1000", "-S", "memory://x"]),
    ]


def compile_packages() -> None:
    """Write the bytecode of both distributions' packages, as this Python finds them."""
    import compileall
    import importlib.util

    for name in ("market_data_pipeline", "market_data_contracts"):
        spec = importlib.util.find_spec(name)
        for directory in (spec.submodule_search_locations or []) if spec else []:
            compileall.compile_dir(directory, quiet=1)


def run_once(argv: list[str], workdir: Path) -> tuple[float, float, int]:
    """Run ``argv`` and return (CPU seconds user + sys, wall seconds, exit code)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env()
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return usage.ru_utime + usage.ru_stime, wall, proc.returncode


def _env() -> dict[str, str]:
    # Settings from the caller's environment would change what the commands do.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MDP_")}
    env["COLUMNS"] = "100"
    return env


def import_times(argv: list[str], workdir: Path) -> list[tuple[int, int, str]]:
    """Return ``python -X importtime`` rows of ``argv``: (self us, cumulative us, module)."""
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        cwd=workdir,
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line[13:]:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        if own.strip().isdigit():
            rows.append((int(own), int(cumulative), name.rstrip()))
    return rows


def heavy_imports(rows: list[tuple[int, int, str]]) -> list[str]:
    names = {name.strip() for _, _, name in rows}
    return [h for h in HEAVY if h in names]


def print_table(all_cases: list[Case]) -> None:
    base_cpu = statistics.median(all_cases[0].cpu_s)
    base_wall = statistics.median(all_cases[0].wall_s)
    print(
        f"{'command':<31} {'cpu s':>6} {'x pass':>7} {'wall s':>7} {'x pass':>7} {'exit':>5}  "
        "heavy imports"
    )
    for case in all_cases:
        cpu = statistics.median(case.cpu_s)
        wall = statistics.median(case.wall_s)
        codes = ",".join(str(c) for c in sorted(case.exit_codes))
        heavy = ", ".join(case.heavy) or "-"
        print(
            f"{case.name:<31} {cpu:6.3f} {cpu / base_cpu:7.1f} {wall:7.3f} "
            f"{wall / base_wall:7.1f} {codes:>5}  {heavy}"
        )


def print_import_times(title: str, rows: list[tuple[int, int, str]], top: int) -> None:
    total = sum(cumulative for _, cumulative, name in rows if not name.startswith(" " * 2))
    print(f"\npython -X importtime {title}: {total / 1000:.0f} ms over top-level imports")
    print(f"{'self ms':>8} {'cumul ms':>9}  module")
    for own, cumulative, name in sorted(rows, key=lambda r: r[1], reverse=True)[:top]:
        print(f"{own / 1000:8.1f} {cumulative / 1000:9.1f}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    python = sys.version.split()[0]
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; Python {python}")
    mdp = mdp_script()
    compile_packages()
    with tempfile.TemporaryDirectory(prefix="mdp-startup-") as tmp:
        workdir = Path(tmp)
        all_cases = cases(mdp, workdir)
        for _ in range(args.repeat):
            for case in all_cases:
                cpu, wall, code = run_once(case.argv, workdir)
                case.cpu_s.append(cpu)
                case.wall_s.append(wall)
                case.exit_codes.add(code)
        timed = {}
        for case in all_cases:
            timed[case.name] = import_times(case.argv, workdir)
            case.heavy = heavy_imports(timed[case.name])
        print(f"median of {args.repeat} runs each, interleaved\n")
        print_table(all_cases)
        print_import_times("mdp --help", timed["mdp --help"], args.top)
        print_import_times(
            "mdp run -n 1000 -S memory://x", timed["mdp run -n 1000 -S memory://x"], args.top
        )
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
