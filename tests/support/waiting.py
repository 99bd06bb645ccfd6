"""Waiting on conditions, never on fixed sleeps: a loaded machine only makes a test slower."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def wait_until(check: Callable[[], object], what: str, timeout_s: float = 30.0) -> None:
    """Poll ``check()`` until it is true; raise naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def wait_while_running(
    run: subprocess.Popen[str], check: Callable[[], bool], what: str, timeout_s: float
) -> None:
    """Poll ``check()`` until it is true; fail if ``run`` ends first or after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert run.poll() is None, f"the run ended (exit {run.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
