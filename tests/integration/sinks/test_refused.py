"""A store that refuses writes (read-only file or database) fails at once: no retry can help."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from market_data_pipeline.config import RunSettings
from market_data_pipeline.runtime import execute

SLOW = "1h"  # a retry budget long enough to hang the test: refusals must not be retried


@pytest.fixture
def read_only_db(tmp_path: Path) -> Iterator[Path]:
    """A SQLite file with a bars table that this process cannot write (immutable as root)."""
    db = tmp_path / "ro.db"
    import sqlite3

    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
    db.chmod(0o444)
    if os.access(db, os.W_OK):  # root: permissions do not apply, the immutable flag does
        done = subprocess.run(["chattr", "+i", str(db)], capture_output=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot make {db} read-only here: {done.stderr.decode().strip()}")
    try:
        yield db
    finally:
        subprocess.run(["chattr", "-i", str(db)], capture_output=True, check=False)
        db.chmod(0o644)


async def test_a_read_only_sqlite_file_fails_the_run_at_once(read_only_db: Path) -> None:
    settings = RunSettings(ticks=2_000, sink=f"sqlite:///{read_only_db}", write_retry_for=SLOW)
    report = await execute(settings)
    assert report.exit_code == 1
    assert report.error is not None and "readonly" in report.error
    assert report.write.get("retries", 0) == 0


async def test_a_read_only_postgres_fails_the_run_at_once(postgres_url: str) -> None:
    head, _, options = postgres_url.partition("options=")
    read_only = quote(f"{unquote(options)} -cdefault_transaction_read_only=on")
    settings = RunSettings(ticks=2_000, sink=f"{head}options={read_only}", write_retry_for=SLOW)
    report = await execute(settings)
    assert report.exit_code == 1
    assert report.error is not None and "read-only" in report.error
