"""Replay CPU and peak RSS end to end, side by side with a one-shot read + group-by + write.

    .venv/bin/python bench/bench_replay.py [--rows 5000000] [--symbols 10,1000,10000]
        [--formats csv,parquet] [--sinks sqlite,postgres] [--threads default,pinned] [--repeat 3]

Generates (once, cached in bench/data/) a trades file of ``--rows`` rows over one trading day
for each symbol count and format, then for every case runs, each in a fresh process and
interleaved so that load drifts hit both alike:

- ceiling: polars reads the whole file (Arrow's CSV reader for CSV, its ISO timestamp parser
  being the fastest one on one core), group-bys it into 1m bars in one shot and writes them
  with a plain insert (SQLite ``executemany`` in one transaction) or ``COPY`` (PostgreSQL)
  into a fresh table of the same columns;
- mdp: ``mdp run --input FILE --resolution 1m --sink URL`` (streamed chunks, cleaning, rate
  gate, bar engine, write queue, transactional upsert) into a fresh table.

CPU is user + sys of the child process (every thread; ``os.wait4``), RSS its peak. PostgreSQL's
own server CPU is in neither. ``default`` threads leaves each process its own choice (the
ceiling's polars pool sized to the cores; mdp asks for one polars thread for a run, see
docs/architecture.md; Arrow's pools to Arrow), with ``POLARS_MAX_THREADS`` unset;
``pinned`` runs both children under ``taskset -c 0``. The best CPU of ``--repeat`` runs is
shown, with the peak RSS of the same run, and the load average when the case started.
``--baseline-src DIR`` adds a third process per run, mdp imported from an earlier ``src/``
(``git archive REV src | tar -x -C DIR``), and its CPU and wall ratios to the same ceiling
(``x base``, ``b wall``; ``wall x`` is mdp's).
Bytecode is written first for the project's sources (and ``--baseline-src``), as an installed
package has it: where ``PYTHONDONTWRITEBYTECODE`` is set, an editable install would otherwise
compile every module of the package from source in every run, about 0.1 s of CPU no installed
wheel pays.
``start`` is the CPU of each on the first 1,000 trades of the file (imports, connections: what
a run costs before its first row), ``x less`` the CPU ratio with that start-up taken off both.
Floors: mdp's CPU within 1.25x of the ceiling's, its peak RSS at most half the ceiling's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from child_usage import run_measured

DATA = Path(__file__).resolve().parent / "data"
MDP = Path(sys.executable).with_name("mdp")
START_MS = 1_704_205_800_000  # 2024-01-02T14:30:00Z
DAY_MS = 23_400_000  # a 6.5-hour session
CPU_FLOOR, RSS_FLOOR = 1.25, 0.5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--symbols", default="10,1000,10000", help="comma-separated counts")
    parser.add_argument("--formats", default="csv,parquet")
    parser.add_argument("--sinks", default="sqlite,postgres")
    parser.add_argument("--threads", default="default,pinned", help="default and/or pinned")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best is shown")
    parser.add_argument(
        "--baseline-src",
        type=Path,
        help="also run mdp with this src/ directory first on PYTHONPATH (an earlier version)",
    )
    parser.add_argument("--child", choices=("ceiling",), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sink", help=argparse.SUPPRESS)
    parser.add_argument("--table", help=argparse.SUPPRESS)
    return parser.parse_args()


def compile_sources(*roots: Path) -> None:
    """Write the bytecode of the Python sources under ``roots`` (see the module docstring)."""
    import compileall

    for root in roots:
        compileall.compile_dir(root, quiet=1)


def package_dirs() -> list[Path]:
    """Return the directories of the two distributions' packages, as this Python finds them."""
    import importlib.util

    dirs: list[Path] = []
    for name in ("market_data_pipeline", "market_data_contracts"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            dirs.extend(Path(d) for d in spec.submodule_search_locations)
    return dirs


def tiny(path: Path) -> Path:
    """Return the first 1,000 trades of ``path``: the runs on it measure the fixed cost."""
    import polars as pl

    small = path.with_name(f"{path.stem}-first1000{path.suffix}")
    if not small.exists():
        if path.suffix == ".csv":
            with path.open() as source, small.open("w") as out:
                out.writelines(line for _, line in zip(range(1001), source, strict=False))
        else:
            pl.scan_parquet(path).head(1000).collect().write_parquet(small)
    return small


def generate(rows: int, symbols: int, fmt: str) -> Path:
    """Return a cached trades file: ``rows`` trades of ``symbols`` symbols in time order."""
    import numpy as np
    import polars as pl

    path = DATA / f"trades-{rows}-{symbols}.{fmt}"
    if path.exists():
        return path
    DATA.mkdir(exist_ok=True)
    rng = np.random.default_rng(42)
    names = np.array([f"SYM{i:05d}" for i in range(symbols)])
    ts = START_MS + np.sort(rng.integers(0, DAY_MS, rows))
    frame = pl.DataFrame(
        {
            "symbol": names[rng.integers(0, symbols, rows)],
            "ts": pl.Series(ts).cast(pl.Datetime("ms")).dt.replace_time_zone("UTC"),
            "price": np.round(100 + np.cumsum(rng.normal(0, 0.01, rows)), 2),
            "size": rng.integers(1, 500, rows),
        }
    )
    if fmt == "csv":
        frame.write_csv(path, datetime_format="%Y-%m-%dT%H:%M:%S%.3fZ")
    else:
        frame.write_parquet(path)
    return path


# -- the ceiling, in its own process ---------------------------------------------------------
def ceiling(path: Path, sink: str, table: str) -> None:
    """Read ``path`` whole, group it into 1m bars, write them to a fresh ``table``."""
    import polars as pl

    if path.suffix == ".csv":
        import pyarrow.csv as pacsv

        read = pl.from_arrow(pacsv.read_csv(path))
        assert isinstance(read, pl.DataFrame)  # an Arrow table converts to a frame
        frame = read
    else:
        frame = pl.read_parquet(path)
    minute = pl.col("ts").dt.truncate("1m")
    bars = frame.group_by("symbol", minute).agg(
        pl.col("price").first().alias("open"),
        pl.col("price").max().alias("high"),
        pl.col("price").min().alias("low"),
        pl.col("price").last().alias("close"),
        pl.col("size").sum().cast(pl.Float64).alias("volume"),
        ((pl.col("price") * pl.col("size")).sum() / pl.col("size").sum()).alias("vwap"),
        pl.len().alias("trades"),
    )
    columns = ("symbol", "ts", "open", "high", "low", "close", "volume", "vwap", "trades")
    if sink.startswith("sqlite"):
        import sqlite3

        stored = bars.with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ"))
        rows = zip(*(stored.get_column(c).to_list() for c in columns), strict=True)
        conn = sqlite3.connect(sink.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute(
            f"CREATE TABLE {table} (symbol TEXT, ts TEXT, open REAL, high REAL, low REAL,"
            " close REAL, volume REAL, vwap REAL, trades INTEGER, PRIMARY KEY (symbol, ts))"
        )
        conn.execute("BEGIN")
        conn.executemany(f"INSERT INTO {table} VALUES ({','.join('?' * len(columns))})", rows)
        conn.execute("COMMIT")
        conn.close()
    else:
        import psycopg

        payload = bars.select(columns).write_csv(include_header=False).encode()
        with psycopg.connect(sink) as pg:
            pg.execute(
                f"CREATE TABLE {table} (symbol TEXT, ts TIMESTAMPTZ, open FLOAT8, high FLOAT8,"
                " low FLOAT8, close FLOAT8, volume FLOAT8, vwap FLOAT8, trades BIGINT,"
                " PRIMARY KEY (symbol, ts))"
            )
            with pg.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN (FORMAT csv)") as copy:
                copy.write(payload)


# -- the parent: cases, runs, table ----------------------------------------------------------
@dataclass
class Run:
    cpu_s: float
    rss_mib: float
    wall_s: float


@dataclass
class Case:
    symbols: int
    fmt: str
    sink: str
    threads: str
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    ceiling: list[Run] = field(default_factory=list)
    mdp: list[Run] = field(default_factory=list)
    base: list[Run] = field(default_factory=list)  # mdp from --baseline-src
    fixed: tuple[float, float] = (0.0, 0.0)  # CPU of both on a 1,000-trade file: start-up


def measure(argv: list[str], env: dict[str, str]) -> Run:
    """Run ``argv`` to its end; return its CPU seconds, peak RSS and wall seconds (its own:
    ``child_usage``; this process holds a generated file's frame when it made one)."""
    used = run_measured(argv, env)
    if used.returncode != 0:
        output = used.stderr.decode() + used.stdout.decode()
        sys.exit(f"{' '.join(argv)} failed ({used.returncode}):\n{output}")
    return Run(used.cpu_s, used.rss_mb, used.wall_s)


def sink_url(kind: str, args: argparse.Namespace, table: str) -> str:
    if kind == "sqlite":
        db = DATA / f"{table}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{db}"
    drop_postgres(args, table)
    return str(args.postgres)


def drop_postgres(args: argparse.Namespace, table: str) -> None:
    import psycopg

    with psycopg.connect(args.postgres, autocommit=True) as conn:
        for name in (table, f"{table}_checkpoints"):
            conn.execute(f"DROP TABLE IF EXISTS {name}")


def run_case(case: Case, path: Path, args: argparse.Namespace) -> None:
    env = dict(os.environ)
    env.pop("POLARS_MAX_THREADS", None)
    pin = ["taskset", "-c", "0"] if case.threads == "pinned" else []
    table = f"bench_replay_{os.getpid()}"
    case.load = os.getloadavg()
    for _ in range(args.repeat):
        url = sink_url(case.sink, args, table)
        me = [sys.executable, __file__, "--child", "ceiling", "--file", str(path)]
        case.ceiling.append(measure([*pin, *me, "--sink", url, "--table", table], env))
        url = sink_url(case.sink, args, table)
        mdp = [str(MDP), "run", "--input", str(path), "-r", "1m", "--sink", url, "--json"]
        case.mdp.append(measure([*pin, *mdp, "--table", table], env))
        if args.baseline_src is not None:
            url = sink_url(case.sink, args, table)
            mdp = [str(MDP), "run", "--input", str(path), "-r", "1m", "--sink", url, "--json"]
            old = {**env, "PYTHONPATH": str(args.baseline_src.resolve())}
            case.base.append(measure([*pin, *mdp, "--table", table], old))
    small = tiny(path)
    url = sink_url(case.sink, args, table)
    me = [sys.executable, __file__, "--child", "ceiling", "--file", str(small)]
    top = measure([*pin, *me, "--sink", url, "--table", table], env).cpu_s
    url = sink_url(case.sink, args, table)
    mdp = [str(MDP), "run", "--input", str(small), "-r", "1m", "--sink", url, "--json"]
    case.fixed = (top, measure([*pin, *mdp, "--table", table], env).cpu_s)
    if case.sink == "postgres":
        drop_postgres(args, table)
    else:
        sink_url("sqlite", args, table)


def best(runs: list[Run]) -> Run:
    return min(runs, key=lambda run: run.cpu_s)


def print_table(rows: int, cases: list[Case]) -> None:
    print(f"\n{rows:,} trades, 1m bars; CPU = user + sys seconds, best of the runs")
    base_head = "  base s  x base  b wall" if cases[0].base else ""
    head = (
        f"{'symbols':>8} {'format':7} {'sink':9} {'threads':8} {'ceil s':>7} {'mdp s':>7}"
        f" {'x cpu':>6} {'ceil MiB':>9} {'mdp MiB':>8} {'x rss':>6} {'wall x':>7}"
        f" {'start':>9} {'x less':>6}{base_head}  load 1/5/15"
    )
    print(head)
    for case in cases:
        top, ours = best(case.ceiling), best(case.mdp)
        ratio, rss = ours.cpu_s / top.cpu_s, ours.rss_mib / top.rss_mib
        less = (ours.cpu_s - case.fixed[1]) / (top.cpu_s - case.fixed[0])
        earlier = ""
        if case.base:
            base = best(case.base)
            earlier = (
                f" {base.cpu_s:>7.2f} {base.cpu_s / top.cpu_s:>6.2f}"
                f" {base.wall_s / top.wall_s:>7.2f}"
            )
        flags = ("" if ratio <= CPU_FLOOR else " cpu!") + ("" if rss <= RSS_FLOOR else " rss!")
        load = "/".join(f"{x:.2f}" for x in case.load)
        print(
            f"{case.symbols:>8,} {case.fmt:7} {case.sink:9} {case.threads:8}"
            f" {top.cpu_s:>7.2f} {ours.cpu_s:>7.2f} {ratio:>6.2f} {top.rss_mib:>9.0f}"
            f" {ours.rss_mib:>8.0f} {rss:>6.2f} {ours.wall_s / top.wall_s:>7.2f}"
            f" {case.fixed[0]:>4.2f}/{case.fixed[1]:<4.2f} {less:>6.2f}{earlier}  {load}{flags}"
        )


def main() -> None:
    args = parse_args()
    if args.child == "ceiling":
        ceiling(args.file, args.sink, args.table)
        return
    if args.threads != "default" and shutil.which("taskset") is None:
        sys.exit("taskset not found: run with --threads default")
    cases = [
        Case(int(symbols), fmt, sink, threads)
        for symbols in args.symbols.split(",")
        for fmt in args.formats.split(",")
        for sink in args.sinks.split(",")
        for threads in args.threads.split(",")
    ]
    compile_sources(*package_dirs(), *([args.baseline_src] if args.baseline_src else []))
    print(f"cores: {os.cpu_count()}, load before: {os.getloadavg()}")
    for case in cases:
        path = generate(args.rows, case.symbols, case.fmt)
        run_case(case, path, args)
        top, ours = best(case.ceiling), best(case.mdp)
        what = f"{case.symbols} {case.fmt} {case.sink} {case.threads}"
        print(f"{what}: ceiling {top.cpu_s:.2f} s, mdp {ours.cpu_s:.2f} s", flush=True)
    print_table(args.rows, cases)
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
