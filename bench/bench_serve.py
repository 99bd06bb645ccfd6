"""Benchmark ``mdp serve``: N concurrent small replays through the API vs the same N as processes.

Run: ``.venv/bin/python bench/bench_serve.py [--runs 50] [--rows 2000] [--repeat 3] [--api-only]``.

1. **API**: ``mdp serve --max-runs N`` is started in its own session (as a pod is its own
   cgroup: with the kernel's session autogroups, the service and its runs share one scheduling
   group and the clients here are not charged to it) and waited on until ``/healthz`` answers.
   First a bad file (a bad price in row 3) is replayed a few times with the service idle: the
   time from POST to reading ``failed``. Then N clients each POST ``/v1/replay/ticks`` for their
   own file at once, and poll ``GET /v1/replay/ticks/{id}`` (with a ``{}`` body, as
   market-data-orchestrator does) every ``--poll-interval`` (default 50 ms; the orchestrator's
   own default is 10 s) until ``success``. Every poll's time is kept.
2. **Processes**: the same N replays as N concurrent ``mdp run --input FILE`` processes.

Prints one row per way (``--repeat`` measures the API again): total CPU seconds (user + sys:
for the API the service and every run process it reaped, from ``/proc``; for the processes
``os.wait4``) and wall seconds from the first request or start to the last run's end; for the
API the p50/p99/max of the status polls (floor: p99 under 50 ms), the service process's own CPU
and how long it was runnable but waiting for a core (``/proc/PID/task/*/schedstat``: on a
shared machine this, not the service's work, is what a slow poll waits for), the bad file's
times, and the 1-minute load average after it. Each file holds its own symbols, so the runs
never write the same rows. The sink must take concurrent writers: PostgreSQL (default: a fresh
schema in ``MDP_TEST_POSTGRES_URL``, dropped at the end).
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
BAD_FILE = "bad.csv"
BAD_CSV = "ts,symbol,price,size\n1704186000000,B0,100,1\n1704186000100,B0,abc,1\n"
BAD_FILE_TRIES = 5


@dataclass
class Result:
    """What one way of running the replays measured."""

    cpu_s: float
    wall_s: float
    errors: list[str] = field(default_factory=list)
    polls_ms: list[float] = field(default_factory=list)
    service: Usage | None = None  # the service process alone (API only)
    bad_file_ms: list[float] = field(default_factory=list)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.polls_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


@dataclass
class Usage:
    """CPU of one process (not its children) and how long it waited for a core."""

    cpu_s: float
    run_s: float  # /proc/PID/schedstat: time on a core (all its threads)
    wait_s: float  # time runnable but waiting for a core
    slices: int

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            self.cpu_s - other.cpu_s,
            self.run_s - other.run_s,
            self.wait_s - other.wait_s,
            self.slices - other.slices,
        )


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


def proc_cpu_s(pid: int, *, children: bool = True) -> float:
    """User + system CPU of ``pid`` (and of every child it has reaped), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (11, 12)  # utime stime; then cutime cstime
    ticks = sum(int(fields[i]) for i in (*own, 13, 14) if children or i in own)
    return ticks / os.sysconf("SC_CLK_TCK")


def usage(pid: int) -> Usage:
    """The service's own CPU and scheduler figures, summed over its threads."""
    run_ns = wait_ns = slices = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            run, wait, count = (task / "schedstat").read_text().split()
        except OSError:  # a thread that just ended
            continue
        run_ns, wait_ns, slices = run_ns + int(run), wait_ns + int(wait), slices + int(count)
    return Usage(proc_cpu_s(pid, children=False), run_ns / 1e9, wait_ns / 1e9, slices)


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


def client(port: int, name: str, latencies: list[float], errors: list[str], poll_s: float) -> None:
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
        time.sleep(poll_s)


def bad_file_ms(port: int, name: str) -> float:
    """Milliseconds from POSTing a replay of a bad file to reading its ``failed`` status."""
    begin = time.perf_counter()
    status, started = call(port, "POST", "/v1/replay/ticks", {"input": name})
    if status >= 400:
        sys.exit(f"POST {name}: {status} {started}")
    while True:
        _, state = call(port, "GET", f"/v1/replay/ticks/{started['run_id']}", {})
        if state["status"] not in ("pending", "running"):
            break
        time.sleep(0.002)
    if state["status"] != "failed" or "row 3, field price" not in (state["error"] or ""):
        sys.exit(f"the bad file ended {state['status']}: {state['error']}")
    return (time.perf_counter() - begin) * 1000


def bench_api(data: Path, names: list[str], sink: str, poll_s: float = POLL_S) -> Result:
    port = free_port()
    cmd = [sys.executable, "-m", "market_data_pipeline.cli", "serve", "--port", str(port)]
    cmd += ["--data-dir", str(data), "--sink", sink, "--max-runs", str(len(names))]
    cmd += ["--log-level", "warning"]
    # Its own session, as a pod is its own cgroup: with the kernel's session autogroups the
    # service and its runs then share one scheduling group, and the clients here do not
    # count against it.
    service = subprocess.Popen(cmd, cwd=data, start_new_session=True)
    try:
        wait_ready(port, service)
        bad = [bad_file_ms(port, BAD_FILE) for _ in range(BAD_FILE_TRIES)]
        cpu0, wall0, use0 = proc_cpu_s(service.pid), time.monotonic(), usage(service.pid)
        latencies: list[float] = []
        errors: list[str] = []
        threads = [
            threading.Thread(target=client, args=(port, name, latencies, errors, poll_s))
            for name in names
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - wall0
        cpu = proc_cpu_s(service.pid) - cpu0
        service_use = usage(service.pid) - use0
    finally:
        service.terminate()
        service.wait(timeout=60)
    result = Result(cpu, wall, errors, [latency * 1000 for latency in latencies], service_use)
    result.bad_file_ms = bad
    return result


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
    parser.add_argument("--repeat", type=int, default=1, help="measure the API this many times")
    parser.add_argument("--api-only", action="store_true", help="skip the mdp run processes")
    parser.add_argument("--sink", help="a PostgreSQL URL (default: a fresh schema)")
    parser.add_argument(
        "--poll-interval", type=float, default=POLL_S, help="seconds between a client's polls"
    )
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}  cores: {os.cpu_count()}")
    rows: list[tuple[str, Result, tuple[float, ...]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        names = write_inputs(data, args.runs, args.rows)
        (data / BAD_FILE).write_text(BAD_CSV, encoding="utf-8")
        with postgres_schema() if args.sink is None else _given(args.sink) as sink:
            for n in range(args.repeat):
                label = "through mdp serve" + (f" #{n + 1}" if args.repeat > 1 else "")
                result = bench_api(data, names, sink, args.poll_interval)
                rows.append((label, result, os.getloadavg()))
            if not args.api_only:
                rows.append(("as mdp run processes", bench_processes(data, names, sink), ()))
    print_table(args.runs, args.rows, rows)
    print(f"each client polled every {args.poll_interval * 1000:.0f} ms")
    print(f"load average after: {os.getloadavg()}")


def print_table(runs: int, ticks: int, rows: list[tuple[str, Result, tuple[float, ...]]]) -> None:
    print(f"\n{runs} concurrent replays of {ticks:,} ticks each, 1m bars, into PostgreSQL")
    print(
        f"{'':24}{'CPU s':>7}{'wall s':>8}{'err':>5}{'polls':>7}{'p50 ms':>8}{'p99 ms':>8}"
        f"{'max ms':>8}{'svc CPU s':>10}{'svc wait s':>11}{'bad file ms':>13}  load 1m"
    )
    for label, result, load in rows:
        line = f"{label:24}{result.cpu_s:>7.1f}{result.wall_s:>8.1f}{len(result.errors):>5}"
        if result.polls_ms:
            use = result.service
            assert use is not None
            bad = result.bad_file_ms
            line += (
                f"{len(result.polls_ms):>7}{statistics.median(result.polls_ms):>8.1f}"
                f"{result.quantile(0.99):>8.1f}{max(result.polls_ms):>8.1f}"
                f"{use.cpu_s:>10.1f}{use.wait_s:>11.1f}"
                f"{statistics.median(bad):>7.0f} /{max(bad):>4.0f}  {load[0]:.1f}"
            )
        print(line)
    for _label, result, _load in rows:
        for error in result.errors[:5]:
            print("  error:", error)
    print(
        f"CPU: the service and every run process (API), or the processes; svc: the service"
        f" process alone, CPU used and time it was runnable but waited for a core (schedstat);"
        f" p99 floor {FLOOR_MS:.0f} ms; bad file: POST to failed, median / max of"
        f" {BAD_FILE_TRIES} with the service idle"
    )


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url


if __name__ == "__main__":
    main()
