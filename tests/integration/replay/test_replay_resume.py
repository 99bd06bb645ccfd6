"""``mdp run --input ... --resume``: a replay killed with ``kill -9`` continues where it committed.

A real ``mdp run`` child process replays two CSV files (merged in event time) at a pace that
takes a few seconds, committing a checkpoint every 0.1 s. Once a checkpoint row holds a position
inside the input, the child is killed with SIGKILL; the same command with ``--resume`` then
skips the committed rows and must leave exactly the table of an uninterrupted replay, with a
summary that reconciles and reports the rows skipped. In SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from market_data_pipeline.config import RunSettings
from market_data_pipeline.runtime import execute
from market_data_pipeline.sinks import read_bars

MDP = [sys.executable, "-m", "market_data_pipeline.cli"]
T0_MS = 1_704_186_000_000  # 2024-01-02T09:00:00Z
ROWS = 60_000  # two symbols, one trade each per 0.5 s: about 4 hours of event time
SPEED = "3600"  # 4 hours of event time in about 4 s
RESOLUTIONS = "1m,5m,1h"


def _write_inputs(tmp_path: Path) -> list[Path]:
    """Two files that interleave in time, so the replay is a real merge of both."""
    frame = pl.DataFrame(
        {
            "symbol": [("AAA", "BBB")[i % 2] for i in range(ROWS)],
            "ts": [T0_MS + (i // 2) * 500 for i in range(ROWS)],
            "price": [100.0 + (i * 7919 % 400) * 0.05 for i in range(ROWS)],
            "size": [1 + i % 9 for i in range(ROWS)],
        }
    )
    first, second = tmp_path / "day-a.csv", tmp_path / "day-b.csv"
    frame.filter(pl.int_range(pl.len()) % 3 == 0).write_csv(first)
    frame.filter(pl.int_range(pl.len()) % 3 != 0).write_csv(second)
    return [first, second]


def _args(inputs: list[Path], sink: str, *extra: str) -> list[str]:
    return [
        *MDP, "run", "--input", str(inputs[0]), "--input", str(inputs[1]), "--sink", sink,
        "--resolution", RESOLUTIONS, "--json", *extra,
    ]  # fmt: skip


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MDP_")}


def _position(sink: str) -> int | None:
    """The position of the replay checkpoint in ``sink`` (None: no checkpoint row yet)."""
    query = "SELECT position FROM mdp_checkpoints WHERE name LIKE 'replay:%'"
    try:
        if sink.startswith("sqlite:///"):
            with sqlite3.connect(sink.removeprefix("sqlite:///"), timeout=5) as conn:
                row = conn.execute(query).fetchone()
        else:
            import psycopg

            with psycopg.connect(sink, autocommit=True) as pg:
                row = pg.execute(query).fetchone()
    except (sqlite3.OperationalError, Exception) as exc:  # the table does not exist yet
        if "mdp_checkpoints" not in str(exc) and "no such table" not in str(exc):
            raise
        return None
    return None if row is None else int(row[0])


def _kill_after_a_checkpoint(proc: subprocess.Popen[str], sink: str) -> int:
    """Wait until a checkpoint inside the input is committed, then SIGKILL; its position."""
    deadline = time.monotonic() + 60  # guards a hang only; the wait is for the condition
    while time.monotonic() < deadline and proc.poll() is None:
        position = _position(sink)
        if position is not None and position > 0:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            return position
        time.sleep(0.02)
    _out, err = proc.communicate()
    raise AssertionError(f"no checkpoint before the replay ended: {err[-500:]}")


def _run(args: list[str]) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=120)
    return done.returncode, json.loads(done.stdout)


def _equal_tables(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.height == want.height
    assert_frame_equal(got.drop("vwap"), want.drop("vwap"))
    # A restored window adds its sums in another grouping: vwap may differ in the last bits.
    assert_frame_equal(got.select("vwap"), want.select("vwap"), check_exact=False, rel_tol=1e-12)


def _sink(request: pytest.FixtureRequest, tmp_path: Path, name: str) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / name}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return _sink(request, tmp_path, "resumed.db")


@pytest.mark.slow
def test_a_replay_killed_with_kill_9_resumes_to_the_uninterrupted_table(
    tmp_path: Path, store: str
) -> None:
    inputs = _write_inputs(tmp_path)
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    code, clean = _run(_args(inputs, reference))
    assert code == 0 and clean["reconciled"], clean["error"]

    proc = subprocess.Popen(
        _args(inputs, store, "--resume", "--checkpoint-interval", "0.1", "--speed", SPEED),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    committed = _kill_after_a_checkpoint(proc, store)
    assert 0 < committed < ROWS

    code, resumed = _run(_args(inputs, store, "--resume"))
    assert code == 0, resumed["error"]
    assert resumed["reconciled"]
    skipped = resumed["source"]["resumed_rows"]
    assert skipped >= committed  # the kill may land after a later checkpoint than the one seen
    assert skipped + resumed["ticks_admitted"] == ROWS
    assert "resumed" in resumed["source"]["label"]
    _equal_tables(read_bars(store), read_bars(reference))
    assert _position(store) == -1  # read to its end: complete, nothing left to resume


def _settings(inputs: list[Path], sink: str, **values: Any) -> RunSettings:
    base = {
        "input": [str(p) for p in inputs],
        "sink": sink,
        "resolution": RESOLUTIONS,
        "resume": True,
        "checkpoint_interval": 0.05,
    }
    return RunSettings.model_validate({**base, **values})


async def _stopped_replay(inputs: list[Path], sink: str) -> None:
    """A replay stopped by --duration part-way: its checkpoint stays open to resume."""
    report = await execute(_settings(inputs, sink, speed=2000, duration=1.0))
    assert report.exit_code == 0 and report.stopped_by == "duration", report.error
    position = _position(sink)
    assert position is not None and 0 < position < ROWS


async def test_a_stopped_replay_resumes_to_the_uninterrupted_table(tmp_path: Path) -> None:
    inputs = _write_inputs(tmp_path)
    sink, reference = f"sqlite:///{tmp_path / 'r.db'}", f"sqlite:///{tmp_path / 'ref.db'}"
    await _stopped_replay(inputs, sink)
    report = await execute(_settings(inputs, sink))
    assert report.exit_code == 0 and report.reconciled, report.error
    assert report.source["resumed_rows"] + report.ticks_admitted == ROWS
    assert any(r.restored for r in report.resolutions.values())  # open windows went on
    clean = await execute(_settings(inputs, reference, resume=False))
    assert clean.exit_code == 0
    _equal_tables(read_bars(sink), read_bars(reference))


async def test_a_checkpoint_of_other_resolutions_is_refused(tmp_path: Path) -> None:
    inputs = _write_inputs(tmp_path)
    sink = f"sqlite:///{tmp_path / 'r.db'}"
    await _stopped_replay(inputs, sink)
    report = await execute(_settings(inputs, sink, resolution="1m"))
    assert report.exit_code == 2
    assert "resolutions 1h,1m,5m" in (report.error or "")
    assert "DELETE FROM mdp_checkpoints" in (report.error or "")


async def test_a_checkpoint_of_a_changed_input_file_is_refused(tmp_path: Path) -> None:
    inputs = _write_inputs(tmp_path)
    sink = f"sqlite:///{tmp_path / 'r.db'}"
    await _stopped_replay(inputs, sink)
    with inputs[1].open("a") as extra:
        extra.write(f"AAA,{T0_MS + 10**8},101.0,1\n")
    report = await execute(_settings(inputs, sink))
    assert report.exit_code == 2
    assert "day-b.csv" in (report.error or "") and "input" in (report.error or "")
    assert _position(sink) not in (None, -1)  # the refused run left the checkpoint as it was


async def test_a_file_replaced_with_the_same_size_and_mtime_is_refused(tmp_path: Path) -> None:
    inputs = _write_inputs(tmp_path)
    sink = f"sqlite:///{tmp_path / 'r.db'}"
    await _stopped_replay(inputs, sink)
    stat = inputs[0].stat()
    text = inputs[0].read_text()
    inputs[0].write_text(text.replace("AAA", "AAB", 1))  # same length: what cp -p could leave
    os.utime(inputs[0], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert inputs[0].stat().st_size == stat.st_size
    report = await execute(_settings(inputs, sink))
    assert report.exit_code == 2
    assert "day-a.csv" in (report.error or "") and "ends" in (report.error or "")


async def test_a_complete_replay_resumed_again_starts_from_the_beginning(tmp_path: Path) -> None:
    inputs = _write_inputs(tmp_path)
    sink = f"sqlite:///{tmp_path / 'r.db'}"
    first = await execute(_settings(inputs, sink))
    assert first.exit_code == 0 and _position(sink) == -1
    table = read_bars(sink)
    again = await execute(_settings(inputs, sink, resolution="1m"))  # a complete one never refuses
    assert again.exit_code == 0 and again.ticks_admitted == ROWS
    assert again.source["resumed_rows"] == 0
    _equal_tables(
        read_bars(sink).filter(pl.col("resolution") == "1m"),
        table.filter(pl.col("resolution") == "1m"),
    )


def test_resume_is_for_replays_only() -> None:
    from market_data_pipeline.config import load_settings
    from market_data_pipeline.errors import UsageError

    with pytest.raises(UsageError, match="--resume continues a replay"):
        load_settings(config_file=None, environ={"MDP_RESUME": "1"}, flags={"ticks": 10})
    with pytest.raises(UsageError, match="--on-late fail"):
        load_settings(
            config_file=None,
            environ={},
            flags={"input": ("x.csv",), "resume": True, "on_late": "fail"},
        )


async def test_a_stopped_bars_replay_resumes_to_the_uninterrupted_table(tmp_path: Path) -> None:
    minutes = 20_000
    close = [100.0 + (i * 7919 % 300) * 0.01 for i in range(minutes)]
    bars = tmp_path / "spy_1m.csv"
    pl.DataFrame(
        {
            "symbol": "SPY",
            "ts": [T0_MS + i * 60_000 for i in range(minutes)],
            "open": close,
            "high": [c + 0.2 for c in close],
            "low": [c - 0.2 for c in close],
            "close": close,
            "volume": 10.0,
        }
    ).write_csv(bars)
    base = {"input": [str(bars)], "kind": "bars", "resolution": "1h,1d"}
    sink, reference = f"sqlite:///{tmp_path / 'r.db'}", f"sqlite:///{tmp_path / 'ref.db'}"
    resumable = {**base, "sink": sink, "resume": True, "checkpoint_interval": 0.05}
    stopped = await execute(
        RunSettings.model_validate({**resumable, "speed": 300_000, "duration": 1.0})
    )
    assert stopped.stopped_by == "duration" and 0 < stopped.ticks_admitted < minutes
    resumed = await execute(RunSettings.model_validate(resumable))
    assert resumed.exit_code == 0 and resumed.reconciled, resumed.error
    assert resumed.source["resumed_rows"] + resumed.ticks_admitted == minutes
    clean = await execute(RunSettings.model_validate({**base, "sink": reference}))
    assert clean.exit_code == 0
    _equal_tables(read_bars(sink), read_bars(reference))
