"""A store that cannot be reached fails with one clear line and never shows the password."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from market_data_pipeline.errors import SinkUnavailableError
from market_data_pipeline.sinks import RetryPolicy, WriteQueue, open_sink

DOWN_URL = "postgresql://postgres:s3cr3t-pw@127.0.0.1:1/test"  # nothing listens on port 1


async def test_unreachable_postgres_is_one_line_without_password() -> None:
    sink = open_sink(DOWN_URL)
    with pytest.raises(SinkUnavailableError) as error:
        await sink.open()
    await sink.close()
    message = str(error.value)
    assert message.startswith("cannot connect to postgresql://postgres:***@127.0.0.1:1/test: ")
    assert "\n" not in message
    assert "s3cr3t-pw" not in message
    assert error.value.__cause__ is None and error.value.__suppress_context__


async def test_write_queue_retries_the_connection_then_gives_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    queue = WriteQueue(
        open_sink(DOWN_URL),
        capacity_rows=10,
        batch_rows=10,
        batch_interval_s=1.0,
        retry=RetryPolicy(attempts=3, initial_backoff_s=0.0),
    )
    with caplog.at_level(logging.WARNING), pytest.raises(SinkUnavailableError) as error:
        await queue.start()
    assert error.value.unwritten is None  # nothing was at stake yet
    retries = [r.getMessage() for r in caplog.records if "retrying in" in r.getMessage()]
    assert [m.rsplit(", ", 1)[-1] for m in retries] == ["2 attempts left", "1 attempts left"]
    assert all("s3cr3t-pw" not in r.getMessage() for r in caplog.records)


async def test_sqlite_file_that_cannot_be_created_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    sink = open_sink(f"sqlite:///{blocker / 'bars.db'}")
    with pytest.raises(SinkUnavailableError, match="cannot open SQLite database"):
        await sink.open()
    await sink.close()
