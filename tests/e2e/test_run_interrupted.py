"""An interrupted replay says it is partial: rows not read, last event time committed, exit 130."""

from __future__ import annotations

import json
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
from typing import cast

import polars as pl

from market_data_pipeline.sinks import read_bars

from .conftest import Mdp, write_trades_csv

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
    args = ["--input", str(parquet), "--speed", "200", "--resolution", "1m"]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "market_data_pipeline.cli",
            "run",
            *args,
            "--sink",
            f"sqlite:///{db}",
        ],
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
    head = re.search(r"mdp run: partial \(SIGINT\) - ([\d,]+) ticks", text)
    assert head, text
    taken = int(head.group(1).replace(",", ""))
    unprocessed = re.search(r"stopped\s+([\d,]+) ticks read but not processed", text)
    left = int(unprocessed.group(1).replace(",", "")) if unprocessed else 0
    assert not_read > 0
    assert taken + left + not_read == ROWS
    stored = read_bars(f"sqlite:///{db}")
    assert int(stored["trades"].sum()) == taken  # every tick taken is in a committed bar
    # The last event committed lies in the last bar's window (1m: its start minute).
    last_ns = cast(int, stored["ts_ns"].max())  # an Int64 column's max: an int
    last_start = datetime.fromtimestamp(last_ns // 10**9, tz=UTC)
    assert match.group(2) == last_start.strftime("%Y-%m-%dT%H:%MZ")


def test_a_replay_cut_short_says_partial_in_json(mdp: Mdp, tmp_path: Path) -> None:
    """--duration ends a paced replay early: --json ``partial`` counts what was not read."""
    parquet = tmp_path / "trades.parquet"
    pl.read_csv(write_trades_csv(tmp_path / "trades.csv", ROWS)).write_parquet(parquet)
    sink = f"sqlite:///{tmp_path / 'bars.db'}"
    args = ["--input", str(parquet), "--speed", "100", "--duration", "1", "--sink", sink]
    code, summary = mdp.run_json(*args, "--resolution", "1m")
    assert code == 0, summary
    assert summary["stopped_by"] == "duration"
    partial = summary["partial"]
    assert partial["rows_not_read_exact"] is True
    assert partial["rows_not_read"] > 0
    assert summary["ticks_read"] + partial["rows_not_read"] == ROWS
    assert 0 < partial["read_fraction"] < 1
    stored = read_bars(sink)
    assert int(stored["trades"].sum()) == summary["ticks_admitted"]
    assert partial["last_event_committed"].startswith("2024-01-02T")


def test_a_replay_read_to_its_end_is_not_partial(mdp: Mdp, tmp_path: Path) -> None:
    csv = write_trades_csv(tmp_path / "trades.csv", 500)
    code, summary = mdp.run_json("--input", str(csv), "--sink", f"sqlite:///{tmp_path / 'b.db'}")
    assert code == 0, summary
    assert summary["partial"] is None


def test_a_replay_cut_short_says_partial_in_its_headline(mdp: Mdp, tmp_path: Path) -> None:
    parquet = tmp_path / "trades.parquet"
    pl.read_csv(write_trades_csv(tmp_path / "trades.csv", ROWS)).write_parquet(parquet)
    sink = f"sqlite:///{tmp_path / 'bars.db'}"
    result = mdp("run", "-i", str(parquet), "--speed", "100", "--duration", "1", "-S", sink)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("mdp run: partial (duration) - ")


# Ctrl-C pressed while the bar engine's polars query runs, in the order ``mdp`` meets it: the
# handlers first (the entry point), polars imported after them (its own SIGINT hook with it).
_CTRL_C_INSIDE_POLARS = """
import os, signal, sys
from market_data_pipeline.cli.signals import STOP
STOP.install()
import polars as pl
from market_data_pipeline.aggregation.builder import BarEngine
from market_data_pipeline.cli.entry import main

add_ticks = BarEngine.add_ticks

def press(values):
    os.kill(os.getpid(), signal.SIGINT)
    return values

def interrupted(self, frame):
    BarEngine.add_ticks = add_ticks
    frame.lazy().select(pl.col("price").map_batches(press)).collect()
    return add_ticks(self, frame)

BarEngine.add_ticks = interrupted
sys.argv = ["mdp", *sys.argv[1:]]
main()
"""


def test_ctrl_c_inside_a_polars_query_still_ends_in_the_summary(tmp_path: Path) -> None:
    """The signal becomes a stop request, not a KeyboardInterrupt out of polars: summary,
    status and exit code agree, and the store holds every tick taken."""
    csv = write_trades_csv(tmp_path / "trades.csv", ROWS)
    sink = f"sqlite:///{tmp_path / 'bars.db'}"
    args = ["run", "-i", str(csv), "-r", "1m", "-S", sink, "--json"]
    proc = subprocess.run(
        [sys.executable, "-c", _CTRL_C_INSIDE_POLARS, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    summary = json.loads(proc.stdout)
    assert proc.returncode == 130
    assert (summary["status"], summary["exit_code"]) == ("stopped", 130)
    assert summary["stopped_by"] == "SIGINT"
    assert summary["partial"]["rows_not_read"] == ROWS - summary["ticks_read"]
    stored = read_bars(sink)
    assert stored.height == summary["bars_written"] > 0
    assert int(stored["trades"].sum()) == summary["ticks_admitted"]
