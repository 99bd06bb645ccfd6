"""Benchmark ``mdp serve``: N concurrent small replays through the API vs the same N as processes.

Run: ``.venv/bin/python bench/bench_serve.py [--runs 50] [--rows 2000] [--sink URL]``.

1. **API**: ``mdp serve --max-runs N`` is started (and waited on until ``/healthz`` answers);
   N clients each POST ``/v1/replay/ticks`` for their own file at once, then poll
   ``GET /v1/replay/ticks/{id}`` (with a ``{}`` body, as market-data-orchestrator does) every
   50 ms until ``success``. Every poll's response time is kept.
2. **Processes**: the same N replays as N concurrent ``mdp run --input FILE`` processes.

Prints, side by side, the total CPU seconds (user + sys: for the API the service and every run
process it reaped, from ``/proc``; for the processes ``os.wait4``) and the wall seconds from the
first request or start to the last run's end; then the p50/p99/max of the status polls and
whether p99 is under the 50 ms floor. Each file holds its own symbols, so the runs never write
the same rows. The sink must take concurrent writers: PostgreSQL (default: a fresh schema in
``MDP_TEST_POSTGRES_URL``, dropped at the end). The machine's load average is printed before
and after: on a shared machine the numbers move with it.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

T0_MS = 1_704_186_000_000
POSTGRES_URL = os.environ.get("MDP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
POLL_S = 0.05
FLOOR_MS = 50.0


@dataclass
class Result:
    """What one way of running the replays measured."""

    cpu_s: float
    wall_s: float
    errors: list[str] = field(default_factory=list)
    polls_ms: list[float] = field(default_factory=list)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.polls_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def write_inputs(data: Path, runs: int, rows: int) -> list[str]:
    names = []
    for n in range(runs):
        lines = ["ts,symbol,price,size"]
        lines += [
            f"{T0_MS + i * 100},R{n}S{i % 2},{100 + (i * 7 % 41) * 0.25:.2f},{1 + i % 5}"
            for i in range(rows)
        ]
        name = f"run{n:03d}.csv"
        (data / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
        names.append(name)
    return names


@contextmanager
def postgres_schema() -> Iterator[str]:
    import psycopg

    schema = f"mdp_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        sep = "&" if "?" in POSTGRES_URL else "?"
        yield f"{POSTGRES_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(port: int, method: str, path: str, body: object) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(
            method, path, body=json.dumps(body), headers={"Content-Type": "application/json"}
        )
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read() or b"{}")
    finally:
        conn.close()


def proc_cpu_s(pid: int) -> float:
    """User + system CPU of ``pid`` and of every child it has reaped, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"mdp serve exited {process.returncode}")
        try:
            if call(port, "GET", "/healthz", {})[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    sys.exit("mdp serve did not become ready")


def client(port: int, name: str, latencies: list[float], errors: list[str]) -> None:
    status, started = call(port, "POST", "/v1/replay/ticks", {"input": name, "resolution": "1m"})
    if status >= 400:
        errors.append(f"{name}: POST {status} {started}")
        return
    run_id = started["run_id"]
    while True:
        begin = time.perf_counter()
        _, state = call(port, "GET", f"/v1/replay/ticks/{run_id}", {})
        latencies.append(time.perf_counter() - begin)
        if state["status"] == "success":
            return
        if state["status"] == "failed":
            errors.append(f"{name}: {state['error']}")
            return
        time.sleep(POLL_S)


def bench_api(data: Path, names: list[str], sink: str) -> Result:
    port = free_port()
    cmd = [sys.executable, "-m", "market_data_pipeline.cli", "serve", "--port", str(port)]
    cmd += ["--data-dir", str(data), "--sink", sink, "--max-runs", str(len(names))]
    cmd += ["--log-level", "warning"]
    service = subprocess.Popen(cmd, cwd=data)
    try:
        wait_ready(port, service)
        cpu0, wall0 = proc_cpu_s(service.pid), time.monotonic()
        latencies: list[float] = []
        errors: list[str] = []
        threads = [
            threading.Thread(target=client, args=(port, name, latencies, errors)) for name in names
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - wall0
        cpu = proc_cpu_s(service.pid) - cpu0
    finally:
        service.terminate()
        service.wait(timeout=60)
    return Result(cpu, wall, errors, [latency * 1000 for latency in latencies])


def bench_processes(data: Path, names: list[str], sink: str) -> Result:
    mdp = str(Path(sys.executable).parent / "mdp")
    wall0 = time.monotonic()
    children = {
        subprocess.Popen(
            [mdp, "run", "--input", str(data / name), "-r", "1m", "--sink", sink, "--json"],
            stdout=subprocess.DEVNULL,
        ).pid: name
        for name in names
    }
    cpu, errors = 0.0, list[str]()
    while children:
        pid, status, usage = os.wait4(-1, 0)
        name = children.pop(pid, None)
        if name is None:
            continue
        cpu += usage.ru_utime + usage.ru_stime
        if os.waitstatus_to_exitcode(status) != 0:
            errors.append(f"{name}: exit {os.waitstatus_to_exitcode(status)}")
    return Result(cpu, time.monotonic() - wall0, errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rows", type=int, default=2_000)
    parser.add_argument("--sink", help="a PostgreSQL URL (default: a fresh schema)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}  cores: {os.cpu_count()}")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        names = write_inputs(data, args.runs, args.rows)
        with postgres_schema() if args.sink is None else _given(args.sink) as sink:
            api = bench_api(data, names, sink)
            procs = bench_processes(data, names, sink)
    print(f"{args.runs} concurrent replays of {args.rows:,} ticks each, 1m bars, into PostgreSQL")
    print(f"{'':22}{'CPU s':>10}{'wall s':>10}  errors")
    for label, result in (("through mdp serve", api), ("as mdp run processes", procs)):
        print(f"{label:22}{result.cpu_s:>10.1f}{result.wall_s:>10.1f}  {len(result.errors)}")
    for error in [*api.errors, *procs.errors][:5]:
        print("  error:", error)
    p99 = api.quantile(0.99)
    verdict = "under" if p99 < FLOOR_MS else "OVER"
    print(
        f"status polls under load: {len(api.polls_ms)} polls,"
        f" p50 {statistics.median(api.polls_ms):.1f} ms, p99 {p99:.1f} ms ({verdict} the"
        f" {FLOOR_MS:.0f} ms floor), max {max(api.polls_ms):.1f} ms"
    )
    print(f"load average after: {os.getloadavg()}")


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    main()
