"""Driver errors sorted at the store boundary: what can pass is retried, the rest is final."""

from __future__ import annotations

import pytest

from market_data_pipeline.errors import (
    SinkError,
    SinkRefusedError,
    SinkUnavailableError,
    UsageError,
)
from market_data_pipeline.sinks.failures import pg_errors

psycopg = pytest.importorskip("psycopg")
URL = "postgresql://u:s3cret-pw@db:5432/market"


def _raised(exc: Exception, action: str = "write") -> Exception:
    with pytest.raises(Exception) as info, pg_errors(URL, action):
        raise exc
    return info.value


@pytest.mark.parametrize(
    "state",
    ["08006", "40001", "40P01", "53100", "53300", "55P03", "57P01", "57P03", "57014", "58030"],
)
def test_errors_that_can_pass_are_retried(state: str) -> None:
    error = _raised(psycopg.errors.lookup(state)("passing"))
    assert type(error) is SinkError


@pytest.mark.parametrize(
    "state",
    ["25006", "42501", "42P01", "42703", "42804", "54000", "22001", "23502", "3F000", "0A000"],
)
def test_errors_no_retry_fixes_fail_at_once(state: str) -> None:
    error = _raised(psycopg.errors.lookup(state)(f"final {URL}"))
    assert isinstance(error, SinkRefusedError)
    assert "s3cret-pw" not in str(error)


def test_a_broken_connection_without_sqlstate_is_retried() -> None:
    error = _raised(psycopg.OperationalError("server closed the connection unexpectedly"))
    assert type(error) is SinkError


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ('connection refused: FATAL: database "x" does not exist', SinkRefusedError),
        ('FATAL: password authentication failed for user "u"', SinkRefusedError),
        ("connection failed: Connection refused", SinkUnavailableError),
        ("connection is bad: invalid sslmode value", UsageError),
    ],
)
def test_connection_failures_by_what_libpq_says(message: str, kind: type[Exception]) -> None:
    assert type(_raised(psycopg.OperationalError(message), "connect")) is kind
