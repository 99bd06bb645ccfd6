"""SIGINT and SIGTERM at random instants: every run ends in a summary the store agrees with.

Instants are drawn from the moment the entry point has installed its handlers (the first thing
``mdp`` does) to past the end of the run, so they fall in the imports, the set-up, ingest, the
final flush and the summary alike.
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from waiting import wait_until

from market_data_pipeline.cli.signals import EXIT_CODES

from .conftest import Scenario
from .procs import (
    big_trades,
    finish,
    handlers_installed,
    signal_when_ready,
    start_mdp,
    summary,
    table,
    write_trades,
)

pytestmark = pytest.mark.faults
RUNS = 20


def _handlers(proc: subprocess.Popen[str]) -> None:
    wait_until(lambda: handlers_installed(proc.pid), "the handlers", timeout_s=60)


def _one(args: list[str], sink: str, sig: signal.Signals, delay_s: float) -> str | None:
    proc = start_mdp(*args, "--sink", sink, "--json")
    code, out, err = signal_when_ready(proc, sig, delay_s, lambda: _handlers(proc))
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


@pytest.mark.timeout(400)  # 20 runs of a few seconds each, more on a loaded machine
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


# -- real sizes --------------------------------------------------------------------------------
# A 5M-row replay and a 20M-tick synthetic run last seconds of polars and store work each: a
# signal lands inside a group-by, a concat or a commit, not after the work as on small inputs.
BIG_ROWS = 5_000_000
BIG_TICKS = 20_000_000
REAL_SIZE_TRIALS = {"csv": 10, "parquet": 12, "synthetic": 8}  # about 5 minutes on 2 cores
_HEADLINE = re.compile(r"^mdp run: (\w+) \(([^)]*)\) - ([\d,]+) ticks", re.MULTILINE)
_STORE = re.compile(r"^  store .*: ([\d,]+) bars written of", re.MULTILINE)
_UNPROCESSED = re.compile(r"^  stopped\s+([\d,]+) ticks read but not processed", re.MULTILINE)
_NOT_READ = re.compile(r"^  partial\s+([\d,]+) rows not read", re.MULTILINE)


@dataclass(frozen=True)
class Outcome:
    """What one stopped (or finished) run said, in either output form."""

    code: int
    status: str  # JSON status, or the text headline's word (ok, partial, stopped, FAILED)
    exit_code: int | None  # JSON only: the report's own exit code
    stopped_by: str
    ticks_in: int  # ticks taken in (admitted or bad)
    ticks_read: int  # ticks_in and those read but not processed when the run stopped
    bars_written: int
    rows_not_read: int | None  # a stopped replay's, when known


@pytest.fixture(scope="session")
def big_inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 5M-row trade file as CSV and as Parquet, written once per session (seeded)."""
    folder = tmp_path_factory.mktemp("big")
    frame = big_trades(BIG_ROWS, seed=20)
    csv, parquet = folder / "trades.csv", folder / "trades.parquet"
    frame.write_csv(csv)
    frame.write_parquet(parquet)
    return {"csv": csv, "parquet": parquet}


def _real_size_args(kind: str, inputs: dict[str, Path]) -> list[str]:
    if kind == "synthetic":
        return ["run", "--ticks", str(BIG_TICKS), "--resolution", "1m"]
    return ["run", "--input", str(inputs[kind]), "--resolution", "1m"]


def _outcome(code: int, out: str, as_json: bool) -> Outcome | None:
    if as_json:
        report = summary(out)
        if report is None:
            return None
        return Outcome(
            code,
            report["status"],
            report["exit_code"],
            report["stopped_by"],
            report["ticks_admitted"] + report["bad_rows"],
            report["ticks_read"],
            report["bars_written"],
            (report["partial"] or {}).get("rows_not_read"),
        )
    head, store = _HEADLINE.search(out), _STORE.search(out)
    if head is None or store is None:
        return None
    ticks, written = _number(head[3]), _number(store[1])
    unprocessed, left = _UNPROCESSED.search(out), _NOT_READ.search(out)
    read = ticks + (_number(unprocessed[1]) if unprocessed else 0)
    rows_left = _number(left[1]) if left else None
    return Outcome(code, head[1], None, head[2], ticks, read, written, rows_left)


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _disagreement(got: Outcome, sig: signal.Signals) -> str | None:
    """Why the summary and the exit code tell different stories (None: they agree)."""
    by_signal = got.stopped_by == sig.name
    wanted = EXIT_CODES[sig.name] if by_signal else 0
    if got.code != wanted:
        return f"exit {got.code} for a run stopped by {got.stopped_by}"
    if got.exit_code is not None and got.exit_code != got.code:
        return f"the report says exit_code {got.exit_code}, the process exited {got.code}"
    if by_signal == (got.status == "ok"):
        return f"status {got.status!r} for a run stopped by {got.stopped_by} (exit {got.code})"
    return None


def _store_disagreement(got: Outcome, sink: str, full: pl.DataFrame | None) -> str | None:
    """Why the store does not hold what the summary reports (None: it does).

    ``full``: an uninterrupted replay's bars, which every bar before a symbol's last (cut short
    by the stop) must equal.
    """
    stored = table(sink)
    rows = None if full is None else int(full["trades"].sum())
    if stored.height != got.bars_written:
        return f"{stored.height} bars stored, the summary says {got.bars_written}"
    in_bars = int(stored["trades"].sum()) if stored.height else 0
    if rows is not None and in_bars != got.ticks_in:  # a replay commits every tick it took
        return f"{in_bars:,} ticks in stored bars, the summary says {got.ticks_in:,} taken"
    left = got.rows_not_read
    if rows is not None and left is not None and got.ticks_read + left != rows:
        return f"{got.ticks_read:,} read + {left:,} not read is not the input's {rows:,} rows"
    if full is not None and not _same_closed_bars(stored, full):
        return "bars before the stop differ from an uninterrupted run's"
    return None


def _same_closed_bars(stored: pl.DataFrame, full: pl.DataFrame) -> bool:
    key = ["symbol", "resolution", "ts_ns"]
    closed = stored.filter(pl.col("ts_ns") < pl.col("ts_ns").max().over("symbol", "resolution"))
    expected = full.join(closed.select(key), on=key, how="semi").sort(key)
    return closed.sort(key).equals(expected)


def _real_size_trial(
    args: list[str],
    sink: str,
    sig: signal.Signals,
    delay_s: float,
    as_json: bool,
    full: pl.DataFrame | None,
) -> str | None:
    form = ["--json"] if as_json else []
    proc = start_mdp(*args, "--sink", sink, *form)
    code, out, err = signal_when_ready(proc, sig, delay_s, lambda: _handlers(proc), timeout_s=180)
    where = f"{sig.name} after {delay_s:.2f} s ({'json' if as_json else 'text'})"
    if "Traceback" in err:
        return f"{where}: traceback: {err.strip().splitlines()[-1]}"
    got = _outcome(code, out, as_json)
    if got is None:
        return f"{where}: exit {code} without a summary: {err.strip()[-200:]}"
    problem = _disagreement(got, sig) or _store_disagreement(got, sink, full)
    return None if problem is None else f"{where}: {problem}"


def _full_run_s(args: list[str], sink: str) -> float:
    """Wall time of one uninterrupted run (handlers to exit): the span instants are drawn from."""
    proc = start_mdp(*args, "--sink", sink, "--json")
    wait_until(lambda: handlers_installed(proc.pid), "the handlers", timeout_s=60)
    began = time.monotonic()
    code, _out, err = finish(proc, timeout_s=180)
    assert code == 0, err[-500:]
    return time.monotonic() - began


@pytest.mark.timeout(900)  # a guard against a hang: minutes on a loaded 2-core machine
@pytest.mark.parametrize("kind", list(REAL_SIZE_TRIALS))
def test_signals_at_real_sizes(
    kind: str, tmp_path: Path, big_inputs: dict[str, Path], scenario: Scenario
) -> None:
    """SIGINT/SIGTERM at instants spread over a whole real-size run: summary, exit code and
    store agree every time."""
    args = _real_size_args(kind, big_inputs)
    full_sink = f"sqlite:///{tmp_path / 'full.db'}"
    span_s = _full_run_s(args, full_sink)
    # A synthetic run starts at "now": only a replay's bars can be compared with another run's.
    full = None if kind == "synthetic" else table(full_sink)
    trials = REAL_SIZE_TRIALS[kind]
    rng = random.Random(f"real-size-{kind}")
    # Stratified: one instant in each slice of the run (in shuffled order), so early, middle
    # and late signals all occur, of both kinds and in both output forms.
    slices = list(range(trials))
    rng.shuffle(slices)
    for n, part in enumerate(slices):
        sig = (signal.SIGINT, signal.SIGTERM)[n % 2]
        delay_s = span_s * (part + rng.random()) / trials
        sink = f"sqlite:///{tmp_path / f's{n}.db'}"
        failure = _real_size_trial(args, sink, sig, delay_s, n % 4 < 2, full)
        scenario.record(failure is None, failure or "")
    assert scenario.held == scenario.tried, scenario.notes
