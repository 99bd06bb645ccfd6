"""kill -9 at random points of replays into SQLite and PostgreSQL.

A replay writes in one transaction, so whatever the instant of the kill, the table is empty or
complete, and a re-run leaves it equal to a clean run's.
"""

from __future__ import annotations

import random
import signal
import time
import uuid
from pathlib import Path

import polars as pl
import psycopg
import pytest

from .conftest import Scenario
from .procs import finish, start_mdp, table, write_trades
from .servers import PostgresServer

pytestmark = pytest.mark.faults
KILLS_PER_STORE = 5
ROWS = 80_000


def _replay(csv: Path, sink: str) -> tuple[int, str, str]:
    return finish(start_mdp("run", "--input", str(csv), "--sink", sink, "--resolution", "1m,5m"))


def _kill_then_rerun(csv: Path, sink: str, clean_s: float, rng: random.Random) -> str | None:
    """Kill a replay at a random instant; return what did not hold, or None."""
    proc = start_mdp("run", "--input", str(csv), "--sink", sink, "--resolution", "1m,5m")
    delay = rng.uniform(0.05, 1.1) * clean_s
    time.sleep(delay)  # the instant of the kill is the experiment, not a wait for a condition
    proc.send_signal(signal.SIGKILL)
    finish(proc)
    left = table(sink)
    if left.height not in (0, REFERENCE[sink.split(":")[0]].height):
        return f"kill at {delay:.2f} s left {left.height} bars (half a run)"
    code, _, err = _replay(csv, sink)
    if code != 0:
        return f"re-run after a kill at {delay:.2f} s exited {code}: {err.strip()[-200:]}"
    if not table(sink).equals(REFERENCE[sink.split(":")[0]]):
        return f"re-run after a kill at {delay:.2f} s differs from a clean run"
    return None


REFERENCE: dict[str, pl.DataFrame] = {}


def _clean_run(csv: Path, sink: str) -> float:
    started = time.monotonic()
    code, _, err = _replay(csv, sink)
    assert code == 0, err
    REFERENCE[sink.split(":")[0]] = table(sink)
    return time.monotonic() - started


def test_kill9_sqlite_replay(tmp_path: Path, scenario: Scenario) -> None:
    csv = write_trades(tmp_path / "trades.csv", ROWS)
    clean_s = _clean_run(csv, f"sqlite:///{tmp_path / 'clean.db'}")
    rng = random.Random(8)
    for n in range(KILLS_PER_STORE):
        failure = _kill_then_rerun(csv, f"sqlite:///{tmp_path / f'k{n}.db'}", clean_s, rng)
        scenario.record(failure is None, failure or "")
    assert scenario.held == scenario.tried, scenario.notes


def _database(server: PostgresServer) -> str:
    name = f"k{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.url.rsplit("/", 1)[0] + f"/{name}"


def test_kill9_postgres_replay(
    tmp_path: Path, scenario: Scenario, private_postgres: PostgresServer
) -> None:
    csv = write_trades(tmp_path / "trades.csv", ROWS)
    clean_s = _clean_run(csv, _database(private_postgres))
    rng = random.Random(9)
    for _ in range(KILLS_PER_STORE):
        failure = _kill_then_rerun(csv, _database(private_postgres), clean_s, rng)
        scenario.record(failure is None, failure or "")
    assert scenario.held == scenario.tried, scenario.notes
