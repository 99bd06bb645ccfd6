"""An interrupted replay says it is partial: rows not read, last event time committed, exit 130."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from market_data_pipeline.sinks import read_bars

from .conftest import write_trades_csv

ROWS = 20_000


def _read_until(fd: int, wanted: bytes, timeout_s: float) -> bytes:
    """Read a pty until ``wanted`` appears or it closes (the deadline only guards a hang)."""
    seen = b""
    deadline = time.monotonic() + timeout_s
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1.0)
        if not ready:
            continue
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        seen += data
    return seen


def test_sigint_after_progress_reports_partial_and_adds_up(tmp_path: Path) -> None:
    """SIGINT once the progress line shows a percentage: partial, counts match the table, 130."""
    parquet = tmp_path / "trades.parquet"
    frame = pl.read_csv(write_trades_csv(tmp_path / "trades.csv", ROWS))
    frame.write_parquet(parquet, row_group_size=1_000)
    db = tmp_path / "bars.db"
    master, slave = pty.openpty()
    env = {**os.environ, "COLUMNS": "250", "TERM": "xterm"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "market_data_pipeline.cli", "run", "--input", str(parquet)]
        + ["--speed", "200", "--resolution", "1m", "--sink", f"sqlite:///{db}"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    try:
        shown = _read_until(master, b"% ETA", 120)
        assert b"% ETA" in shown, shown.decode(errors="replace")
        proc.send_signal(signal.SIGINT)
        shown += _read_until(master, b"\x00never", 120)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode(errors="replace"))
    assert code == 130, text
    match = re.search(r"partial\s+([\d,]+) rows not read .*last event time committed (\S+)", text)
    assert match, text
    not_read = int(match.group(1).replace(",", ""))
    head = re.search(r"\(SIGINT\) - ([\d,]+) ticks", text)
    assert head, text
    taken = int(head.group(1).replace(",", ""))
    unprocessed = re.search(r"stopped\s+([\d,]+) ticks read but not processed", text)
    left = int(unprocessed.group(1).replace(",", "")) if unprocessed else 0
    assert not_read > 0
    assert taken + left + not_read == ROWS
    stored = read_bars(f"sqlite:///{db}")
    assert int(stored["trades"].sum()) == taken  # every tick taken is in a committed bar
    # The last event committed lies in the last bar's window (1m: its start minute).
    last_start = datetime.fromtimestamp(int(stored["ts_ns"].max()) // 10**9, tz=UTC)
    assert match.group(2) == last_start.strftime("%Y-%m-%dT%H:%MZ")
