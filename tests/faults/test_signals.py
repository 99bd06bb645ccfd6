"""SIGINT and SIGTERM at random instants: every run ends in a summary the store agrees with.

Instants are drawn from the moment the entry point has installed its handlers (the first thing
``mdp`` does) to past the end of the run, so they fall in the imports, the set-up, ingest, the
final flush and the summary alike.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from market_data_pipeline.cli.signals import EXIT_CODES

from .conftest import Scenario
from .procs import finish, handlers_installed, start_mdp, summary, table, write_trades
from .servers import wait_until

pytestmark = pytest.mark.faults
RUNS = 20


def _one(args: list[str], sink: str, sig: signal.Signals, delay_s: float) -> str | None:
    proc = start_mdp(*args, "--sink", sink, "--json")
    try:
        wait_until(lambda: handlers_installed(proc.pid), "the handlers", timeout_s=60)
        time.sleep(delay_s)  # the instant of the signal is the experiment
        if proc.poll() is None:
            proc.send_signal(sig)
    finally:
        code, out, err = finish(proc)
    where = f"{sig.name} after {delay_s:.2f} s"
    if "Traceback" in err:
        return f"{where}: traceback: {err.strip().splitlines()[-1]}"
    report = summary(out)
    if report is None:
        return f"{where}: exit {code} without a JSON summary: {err.strip()[-200:]}"
    stopped = report["stopped_by"] == sig.name
    if code != (EXIT_CODES[sig.name] if stopped else 0):
        return f"{where}: exit {code} for a run stopped by {report['stopped_by']}"
    if not report["reconciled"]:
        return f"{where}: summary does not reconcile"
    stored = table(sink).height
    if stored != report["bars_written"]:
        return f"{where}: {stored} bars stored, summary says {report['bars_written']}"
    return None


def test_signals_at_random_instants(tmp_path: Path, scenario: Scenario) -> None:
    csv = write_trades(tmp_path / "trades.csv", 50_000)
    rng = random.Random(20)
    runs = [
        ["run", "--input", str(csv), "--resolution", "1s,1m"],
        [
            "run",
            "--rate",
            "50000",
            "--duration",
            "2",
            "--resolution",
            "1s,1m",
            "--symbols",
            "A,B,C",
        ],
    ]
    for n in range(RUNS):
        sig = (signal.SIGINT, signal.SIGTERM)[n % 2]
        failure = _one(
            runs[n // 2 % 2], f"sqlite:///{tmp_path / f's{n}.db'}", sig, rng.uniform(0, 3)
        )
        scenario.record(failure is None, failure or "")
    assert scenario.held == scenario.tried, scenario.notes
