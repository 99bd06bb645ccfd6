"""Store errors sorted at the boundary: what can pass is retried, what cannot fails at once.

``sqlite_errors`` and ``pg_errors`` wrap every driver call of the SQL stores and translate
sqlite3 and psycopg exceptions into the pipeline's:

- ``SinkUnavailableError`` / ``SinkError``: an error that can pass, retried within the write
  budget: the connection refused or lost, the server restarting or shutting down, a lock or a
  serialization conflict, a full disk or an I/O error.
- ``SinkRefusedError``: an error no retry fixes, the run fails at once: a read-only store, a
  missing privilege, a table of another shape, a value the store cannot hold (a symbol past
  PostgreSQL's index row limit), a missing database or role, a refused login. Found while a
  store is opened at start, ``BarSink.open`` turns it into ``SinkSetupError`` (exit 2).
- ``UsageError``: a URL or path that can never name a store (a directory, a bad port).

Anything not known to pass is permanent: a retry loop in front of a broken table only delays
the one line that says so.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import SinkError, SinkRefusedError, SinkUnavailableError, UsageError
from ..urls import redact_url, scrub

# SQLite result codes (primary, from ``sqlite_errorname``) that can pass: a writer holding the
# file, memory, an interrupted call, a full disk, an I/O error.
_SQLITE_PASSING = {
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_NOMEM",
    "SQLITE_INTERRUPT",
    "SQLITE_IOERR",
    "SQLITE_FULL",
    "SQLITE_PROTOCOL",
}
# SQLSTATE classes and codes that can pass: connection exceptions (08), transaction rollbacks
# (40: serialization, deadlock), insufficient resources (53: disk full, too many connections),
# lock not available, operator intervention (57: shutdown, restart, statement timeout), system
# errors (58: I/O).
_PG_PASSING_CLASSES = {"08", "40", "53", "57", "58"}
_PG_PASSING_CODES = {"55P03", "55006"}
# libpq reports connection failures as text only (no SQLSTATE reaches the client on connect);
# these never pass: a missing database or role, a refused login, no route in pg_hba.conf.
_PG_FINAL_CONNECT = (
    "does not exist",  # database or role
    "authentication failed",
    "no password supplied",
    "no pg_hba.conf entry",
    "does not support ssl",
    "permission denied",
)
# ... and these mean the URL itself is wrong.
_PG_BAD_URL = (
    "connection is bad",  # libpq rejected the parameters before connecting
    "servname not supported",  # the port is not a number (e.g. an unencoded "/" in a password)
)


@contextmanager
def sqlite_errors(path: str, action: str) -> Iterator[None]:
    """Translate ``sqlite3`` and file-system errors raised inside the block (see the module)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise _sqlite_error(exc, path, action) from None
    except (NotADirectoryError, FileExistsError):  # a parent of the path is a file
        raise UsageError(f"bad SQLite path {path}: a parent is not a directory") from None
    except OSError as exc:  # the directory cannot be created
        reason = exc.strerror or str(exc)
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise SinkRefusedError(f"cannot create SQLite database {path}: {reason}") from None
        raise SinkUnavailableError(f"cannot open SQLite database {path}: {reason}") from None


def _sqlite_error(exc: sqlite3.Error, path: str, action: str) -> SinkError | UsageError:
    name = getattr(exc, "sqlite_errorname", None) or ""
    primary = "_".join(name.split("_")[:2])  # SQLITE_IOERR_SHORT_READ -> SQLITE_IOERR
    if primary == "SQLITE_CANTOPEN":
        if Path(path).is_dir():
            return UsageError(f"bad SQLite path {path}: it is a directory")
        return SinkRefusedError(f"cannot open SQLite database {path}: {exc}")
    if primary in _SQLITE_PASSING:
        return SinkError(f"SQLite {action} failed on {path}: {exc}")
    return SinkRefusedError(f"SQLite {action} failed on {path}: {exc}")


@contextmanager
def pg_errors(url: str, action: str) -> Iterator[None]:
    """Translate psycopg errors raised inside the block (see the module); no password shown.

    ``action`` "connect" marks a connection attempt, whose failures libpq states as text.
    """
    from .postgres import load_driver

    psycopg = load_driver()
    try:
        yield
    except psycopg.Error as exc:
        raise _pg_error(exc, psycopg, url, action) from None


def _pg_error(exc: Exception, psycopg: Any, url: str, action: str) -> SinkError | UsageError:
    where = redact_url(url)
    detail = scrub(str(exc), url)
    if action == "connect":
        return _pg_connect_error(exc, psycopg, where, detail)
    state = getattr(exc, "sqlstate", None)
    if state is None or state[:2] in _PG_PASSING_CLASSES or state in _PG_PASSING_CODES:
        # No SQLSTATE: the connection broke (the server went away mid-statement).
        return SinkError(f"PostgreSQL {action} failed on {where}: {detail}")
    return SinkRefusedError(f"PostgreSQL {action} refused on {where}: {detail}")


def _pg_connect_error(
    exc: Exception, psycopg: Any, where: str, detail: str
) -> SinkError | UsageError:
    text = str(exc).lower()
    if isinstance(exc, psycopg.ProgrammingError | psycopg.InterfaceError) or any(
        marker in text for marker in _PG_BAD_URL
    ):
        return UsageError(f"bad PostgreSQL URL {where}: {detail}")
    if any(marker in text for marker in _PG_FINAL_CONNECT):
        return SinkRefusedError(f"cannot use PostgreSQL store {where}: {detail}")
    return SinkUnavailableError(f"cannot connect to {where}: {detail}")
