"""A store that cannot be reached fails with one clear line and never shows the password."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from market_data_pipeline.errors import SinkSetupError, SinkUnavailableError, UsageError
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


async def test_sqlite_path_under_a_file_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    sink = open_sink(f"sqlite:///{blocker / 'bars.db'}")
    with pytest.raises(UsageError, match="a parent is not a directory"):
        await sink.open()
    await sink.close()


async def test_sqlite_path_that_is_a_directory_is_not_retried(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    sink = open_sink(f"sqlite:///{tmp_path / 'adir'}")
    q = WriteQueue(
        sink, capacity_rows=10, batch_rows=10, batch_interval_s=1.0, retry=RetryPolicy(attempts=3)
    )
    with pytest.raises(UsageError, match="it is a directory"):
        await q.start()  # at once: a retry would wait 0.2 s first


def _local(url: str, **parts: str) -> str:
    """Return ``postgres_url`` (the test server) with user, port, database or query replaced."""
    base = url.split("?", 1)[0]
    scheme, rest = base.split("://", 1)
    userinfo, hostpart = rest.rsplit("@", 1) if "@" in rest else ("postgres", rest)
    hostport, _, _db = hostpart.partition("/")
    host = hostport.rsplit(":", 1)[0]
    user = parts.get("user", userinfo)
    port = parts.get("port", "5432")
    db = parts.get("db", "test")
    return f"{scheme}://{user}@{host}:{port}/{db}{parts.get('query', '')}"


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("parts", "said"),
    [
        ({"db": "mdp_no_such_db"}, 'database "mdp_no_such_db" does not exist'),
        ({"user": "mdp_no_such_role"}, 'role "mdp_no_such_role" does not exist'),
        ({"query": "?sslmode=bogus"}, "invalid sslmode value"),
        ({"port": "abc"}, 'invalid integer value "abc"'),
        ({"user": "postgres:s3cret", "port": "[::1"}, "for connection option"),
    ],
)
async def test_postgres_urls_that_cannot_work_fail_at_once_with_exit_2(
    postgres_url: str, parts: dict[str, str], said: str
) -> None:
    url = _local(postgres_url, **parts)
    q = WriteQueue(
        open_sink(url),
        capacity_rows=10,
        batch_rows=10,
        batch_interval_s=1.0,
        retry=RetryPolicy(attempts=3, initial_backoff_s=60.0),  # a retry would hang the test
    )
    with pytest.raises((UsageError, SinkSetupError)) as error:
        await asyncio.wait_for(q.start(), timeout=20)
    assert error.value.exit_code == 2
    message = str(error.value)
    assert said in message and "\n" not in message and "s3cret" not in message


def test_an_unreachable_store_at_start_gets_seconds_unless_asked_to_wait() -> None:
    from market_data_pipeline.build import _open_retry_policy, _retry_policy
    from market_data_pipeline.config import RunSettings

    default = RunSettings(ticks=10, sink=DOWN_URL)
    assert _open_retry_policy(default).retry_for_s == 3.0
    assert _retry_policy(default).retry_for_s == 60.0  # a store lost mid-run: a restart's time
    asked = RunSettings(ticks=10, sink=DOWN_URL, write_retry_for_s=300.0)
    assert _open_retry_policy(asked).retry_for_s == _retry_policy(asked).retry_for_s == 300.0


async def test_a_run_against_a_refused_port_stops_retrying_within_the_start_budget(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from market_data_pipeline.config import RunSettings
    from market_data_pipeline.runtime import execute

    with caplog.at_level(logging.WARNING):
        report = await execute(RunSettings(ticks=100, sink=DOWN_URL))
    assert report.exit_code == 1 and report.error is not None
    assert report.error.startswith("cannot connect to postgresql://postgres:***@127.0.0.1:1/")
    budgets = [r.getMessage().rsplit(", ", 1)[-1] for r in caplog.records]
    assert budgets and all(b.endswith("s of the retry budget left") for b in budgets)
    assert all(int(b.split()[0]) <= 3 for b in budgets)  # the 3 s start budget, not 60 s
