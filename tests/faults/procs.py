"""Run ``mdp`` as a child process the way a user does, and inspect what it left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

MDP = [sys.executable, "-m", "market_data_pipeline.cli"]
T0_MS = 1_704_186_000_000  # 2024-01-02T09:00:00Z


def start_mdp(*args: str) -> subprocess.Popen[str]:
    """Start ``mdp ARGS`` with its output captured."""
    return subprocess.Popen(
        [*MDP, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_without_mdp(),
    )


def finish(proc: subprocess.Popen[str], timeout_s: float = 120) -> tuple[int, str, str]:
    """Wait for ``proc``; kill it if it outlives ``timeout_s``. Return (code, stdout, stderr)."""
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    return proc.returncode, out, err


def signal_when_ready(
    proc: subprocess.Popen[str],
    sig: signal.Signals,
    delay_s: float,
    ready: Callable[[], object],
    timeout_s: float = 120,
) -> tuple[int, str, str]:
    """Wait as ``ready`` does, then ``delay_s`` more, send ``sig`` unless ``proc`` ended, and
    ``finish`` it (killed past ``timeout_s``, also when ``ready`` raised)."""
    try:
        ready()
        time.sleep(delay_s)  # the instant of the signal is the experiment
        if proc.poll() is None:
            proc.send_signal(sig)
    finally:
        result = finish(proc, timeout_s=timeout_s)
    return result


def summary(out: str) -> dict[str, Any] | None:
    """The JSON summary on stdout, or None when there is none."""
    try:
        data = json.loads(out)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def handlers_installed(pid: int) -> bool:
    """True once the process catches SIGINT and SIGTERM (its entry point has run)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True  # gone already
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    mask = int(caught.split()[1], 16)
    wanted = (1 << (signal.SIGINT - 1)) | (1 << (signal.SIGTERM - 1))
    return mask & wanted == wanted


def write_trades(path: Path, rows: int, symbols: int = 20) -> Path:
    """``rows`` trades, ten per second per symbol, as a CSV a replay reads."""
    i = pl.int_range(rows, eager=True)
    frame = pl.DataFrame(
        {
            "symbol": (i % symbols).map_elements(lambda n: f"S{n:03d}", return_dtype=pl.String),
            "ts": T0_MS + (i // symbols) * 100,
            "price": 100.0 + (i % 37) * 0.25,
            "size": 1 + i % 5,
        }
    )
    frame.write_csv(path)
    return path


def table(url: str) -> pl.DataFrame:
    """The bars a store holds, in key order (empty when a run was killed before creating it)."""
    from market_data_pipeline import frames
    from market_data_pipeline.errors import SinkSetupError
    from market_data_pipeline.sinks import read_bars

    try:
        return read_bars(url).sort(["symbol", "resolution", "ts_ns"])
    except SinkSetupError as exc:
        if not str(exc).startswith(("no database file", "no table")):
            raise  # a store that is there but cannot be read is a finding, not "empty"
        return frames.empty_bars()


def env_without_mdp() -> dict[str, str]:
    """The environment minus ``MDP_`` settings, so a developer's variables change nothing."""
    return {k: v for k, v in os.environ.items() if not k.startswith("MDP_")}


def big_trades(rows: int, seed: int, symbols: int = 20) -> pl.DataFrame:
    """``rows`` trades of ``symbols`` symbols, ten per second each, in time order: a seeded
    random walk of prices and random sizes (the same ``seed``, the same frame)."""
    rng = np.random.default_rng(seed)
    i = pl.int_range(rows).alias("i")
    frame = pl.select(
        symbol=pl.format("S{}", (i % symbols).cast(pl.String).str.zfill(3)),
        ts=T0_MS + (i // symbols) * 100,
    )
    steps = rng.choice(np.array([-0.25, 0.0, 0.25]), size=rows)
    return frame.with_columns(
        price=pl.Series(100.0 + np.abs(np.cumsum(steps))),  # never at or below 0
        size=pl.Series(rng.integers(1, 500, size=rows)),
    )
