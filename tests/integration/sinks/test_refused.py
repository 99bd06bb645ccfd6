"""A store that refuses writes (read-only file or database) fails at once: no retry can help.

Found at start, before anything is written, that is a usage error (exit 2).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from market_data_pipeline.config import RunSettings
from market_data_pipeline.runtime import execute

# Seconds: a retry budget long enough to hang the test: refusals must not be retried.
SLOW = 3_600.0


@pytest.fixture(params=["empty", "with bars in WAL mode"])
def read_only_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A SQLite file that this process cannot write (immutable as root): empty, or holding a
    bars table in WAL mode (opening it then writes nothing, so only a write probe finds out)."""
    db = tmp_path / "ro.db"
    import sqlite3

    if request.param == "empty":
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA journal_mode = DELETE")
    else:
        report = asyncio.run(execute(RunSettings(ticks=100, sink=f"sqlite:///{db}")))
        assert report.exit_code == 0
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
    settings = RunSettings(ticks=2_000, sink=f"sqlite:///{read_only_db}", write_retry_for_s=SLOW)
    report = await execute(settings)
    assert report.exit_code == 2, report.error
    assert report.error is not None and "readonly" in report.error
    assert report.write is None or report.write.retries == 0
    assert report.bars_written == 0


async def test_a_read_only_postgres_fails_the_run_at_once(postgres_url: str) -> None:
    head, _, options = postgres_url.partition("options=")
    read_only = quote(f"{unquote(options)} -cdefault_transaction_read_only=on")
    settings = RunSettings(ticks=2_000, sink=f"{head}options={read_only}", write_retry_for_s=SLOW)
    report = await execute(settings)
    assert report.exit_code == 2, report.error
    assert report.error is not None and "read-only" in report.error
