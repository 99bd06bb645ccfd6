"""Fixtures for the ``mdp serve`` tests: a data directory with tick files, a running service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_process import ServeProcess

T0_MS = 1_704_186_000_000  # 2024-01-02T09:00:00Z


def write_ticks(path: Path, rows: int, *, step_ms: int = 100, symbols: int = 2) -> Path:
    """Write ``rows`` trades ``step_ms`` apart, alternating ``symbols`` instruments."""
    lines = ["ts,symbol,price,size"]
    for i in range(rows):
        price = 100 + (i * 7 % 41) * 0.25
        lines.append(f"{T0_MS + i * step_ms},S{i % symbols},{price:.2f},{1 + i % 5}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """``data/`` with ``ticks.csv`` (fast), ``slow.csv`` (a long event-time span), ``bad.csv``."""
    data = tmp_path / "data"
    data.mkdir()
    write_ticks(data / "ticks.csv", 6_000)
    # 20 ticks a second for 2,000 s of event time: at speed 10 a run lasts minutes, long
    # enough to cancel, kill or restart it mid-way.
    write_ticks(data / "slow.csv", 40_000, step_ms=50)
    (data / "bad.csv").write_text(
        "ts,symbol,price,size\n1704186000000,S0,100,1\n1704186000100,S0,abc,1\n", encoding="utf-8"
    )
    return data


@pytest.fixture
def serve(tmp_path: Path, data_dir: Path) -> Iterator[ServeProcess]:
    """A service writing to ``runs.db`` with inputs under ``data/``."""
    process = ServeProcess(
        tmp_path, "--data-dir", str(data_dir), "--sink", f"sqlite:///{tmp_path / 'runs.db'}"
    )
    with process:
        yield process
