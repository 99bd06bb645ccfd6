"""Run a command and return its own CPU seconds and peak RSS, whatever the size of the caller.

Linux counts the memory a process had before it ran ``exec`` in the peak RSS of what it runs:
a child spawned by a benchmark that holds 800 MiB reports at least 800 MiB, however little the
command itself uses (``fork``, ``vfork`` and ``posix_spawn`` alike). A benchmark that built a
data set in memory therefore saw every child's RSS floored at its own. Here a small launcher
(a fresh Python of a few MiB) spawns the command and reports its ``wait4`` usage on a pipe of
its own, so the figures are the command's alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

# argv: the report's file descriptor, then the command. Prints nothing itself.
_LAUNCHER = """
import os, sys
fd, argv = int(sys.argv[1]), sys.argv[2:]
pid = os.posix_spawnp(argv[0], argv, os.environ)
_, status, usage = os.wait4(pid, 0)
code = os.waitstatus_to_exitcode(status)
os.write(fd, f"{code} {usage.ru_utime} {usage.ru_stime} {usage.ru_maxrss}".encode())
"""


@dataclass
class ChildUsage:
    returncode: int
    cpu_s: float  # user + system, every thread of the command
    rss_mb: float  # its peak resident set, MiB
    wall_s: float
    stdout: bytes
    stderr: bytes


def run_measured(
    argv: list[str], env: dict[str, str] | None = None, *, stderr_to_null: bool = False
) -> ChildUsage:
    """Run ``argv`` to its end through the launcher; capture its stdout and stderr."""
    read_fd, write_fd = os.pipe()
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(write_fd), *argv],
            env=env,
            capture_output=not stderr_to_null,
            stdout=subprocess.PIPE if stderr_to_null else None,
            stderr=subprocess.DEVNULL if stderr_to_null else None,
            pass_fds=(write_fd,),
            check=False,
        )
        wall = time.perf_counter() - started
        os.close(write_fd)
        write_fd = -1
        with os.fdopen(read_fd, "rb") as report:
            fields = report.read().split()
    finally:
        if write_fd >= 0:
            os.close(write_fd)
    if len(fields) != 4:  # the launcher itself failed (the command could not be spawned)
        return ChildUsage(proc.returncode or 1, 0.0, 0.0, wall, proc.stdout, proc.stderr or b"")
    code, utime, stime, maxrss_kb = fields
    return ChildUsage(
        int(code),
        float(utime) + float(stime),
        int(maxrss_kb) / 1024,
        wall,
        proc.stdout,
        proc.stderr or b"",
    )
