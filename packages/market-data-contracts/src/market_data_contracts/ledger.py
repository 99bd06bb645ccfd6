"""The ledger of verification records: SQLite (a local file, the default) or PostgreSQL (shared).

``open_ledger("sqlite:///contracts.db")`` or ``open_ledger("postgresql://user@host/db")``. The table
``contract_records`` is created by the first ``publish``; reading never creates anything, so
reading a ledger that does not exist (a mistyped path) is an error, not an empty answer. A
record is keyed by (repo, commit, Core version, Python, correlation id): publishing the same key
again replaces the row, so re-publishing is idempotent and a re-run of the same job leaves its
latest result. The whole record is kept as
JSON beside the key columns; readers rebuild ``VerificationRecord``s from it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ContractsError
from .record import VerificationRecord
from .urls import redact_url, scrub

DEFAULT_LEDGER = "sqlite:///contracts.db"
TABLE = "contract_records"
_COLUMNS = (
    "repo",
    "commit_sha",
    "core_version",
    "python",
    "correlation_id",
    "verdict",
    "finished_at",
    "record",
)
_CREATE = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    repo TEXT NOT NULL,
    commit_sha TEXT NOT NULL,
    core_version TEXT NOT NULL,
    python TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    verdict TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (repo, commit_sha, core_version, python, correlation_id)
)
"""
_UPSERT = (
    f"INSERT INTO {TABLE} ({', '.join(_COLUMNS)}) VALUES ({{marks}}) "
    "ON CONFLICT (repo, commit_sha, core_version, python, correlation_id) DO UPDATE SET "
    "verdict = excluded.verdict, finished_at = excluded.finished_at, record = excluded.record"
)


class LedgerError(ContractsError):
    """The ledger could not be opened, read or written; the message hides any password."""


@dataclass(frozen=True)
class RecordFilter:
    """Which records to read: ``None`` means any."""

    core: str | None = None
    repos: tuple[str, ...] = ()


class Ledger:
    """Publish and read verification records in one SQL database."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            self._dialect = "sqlite"
        elif url.startswith(("postgresql://", "postgres://")):
            self._dialect = "postgres"
        else:
            raise LedgerError(
                f"unknown ledger URL {redact_url(url)!r}: use sqlite:///FILE or postgresql://..."
            )
        self._ready = False

    def describe(self) -> str:
        """Return the URL with any password hidden."""
        return redact_url(self.url)

    def publish(self, records: Sequence[VerificationRecord]) -> int:
        """Store ``records`` (replacing rows with the same key); return how many were given."""
        rows = [_row(record) for record in records]
        marks = ", ".join(["?" if self._dialect == "sqlite" else "%s"] * len(_COLUMNS))
        with self._connect(create=True) as conn:
            for row in rows:
                conn.execute(_UPSERT.format(marks=marks), row)
        return len(rows)

    def records(self, where: RecordFilter | None = None) -> list[VerificationRecord]:
        """Return matching records, oldest first (by ``finished_at``, then key)."""
        where = where or RecordFilter()
        clauses, params = [], []
        mark = "?" if self._dialect == "sqlite" else "%s"
        if where.core is not None:
            clauses.append(f"core_version = {mark}")
            params.append(where.core)
        if where.repos:
            clauses.append(f"repo IN ({', '.join([mark] * len(where.repos))})")
            params.extend(where.repos)
        sql = f"SELECT record FROM {TABLE}"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY finished_at, repo, commit_sha, core_version, python, correlation_id"
        with self._connect(create=False) as conn:
            rows = conn.execute(sql, params).fetchall()
        return [self._record(row[0]) for row in rows]

    def _record(self, text: str) -> VerificationRecord:
        try:
            return VerificationRecord.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise LedgerError(f"ledger {self.describe()}: an unreadable record: {exc}") from None

    @contextmanager
    def _connect(self, *, create: bool) -> Iterator[Any]:
        try:
            if self._dialect == "sqlite":
                with self._sqlite(create) as conn:
                    yield conn
            else:
                with self._postgres(create) as conn:
                    yield conn
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(f"ledger {self.describe()}: {scrub(str(exc), self.url)}") from None
        except Exception as exc:
            if type(exc).__module__.startswith("psycopg"):
                message = scrub(str(exc).strip(), self.url)
                raise LedgerError(f"ledger {self.describe()}: {message}") from None
            raise

    @contextmanager
    def _sqlite(self, create: bool) -> Iterator[sqlite3.Connection]:
        path = Path(self.url.removeprefix("sqlite:///"))
        if create:
            if path.parent != Path():
                path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, timeout=30)
        elif not path.is_file():
            raise LedgerError(f"ledger {self.describe()}: {path} does not exist") from None
        else:  # read-only: a reader never creates or changes the file
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
        try:
            with conn:  # one transaction: commit on success, roll back on error
                if create and not self._ready:
                    conn.execute(_CREATE)
                    self._ready = True
                yield conn
        finally:
            conn.close()

    @contextmanager
    def _postgres(self, create: bool) -> Iterator[Any]:
        try:
            import psycopg
        except ImportError:  # pragma: no cover - depends on the environment
            raise LedgerError(
                "a PostgreSQL ledger needs the postgres extra: "
                "pip install 'market-data-pipeline[postgres]'"
            ) from None
        with psycopg.connect(self.url, connect_timeout=10) as conn, conn.transaction():
            if create and not self._ready:
                # Two first publishers at once must not race on CREATE TABLE.
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (TABLE,))
                conn.execute(_CREATE)
                self._ready = True
            yield conn


def open_ledger(url: str | None) -> Ledger:
    """Return the ledger at ``url`` (default ``sqlite:///contracts.db``)."""
    return Ledger(url or DEFAULT_LEDGER)


def _row(record: VerificationRecord) -> tuple[str, ...]:
    repo, commit, core, python, correlation = record.key
    text = json.dumps(record.to_json(), sort_keys=True)
    return (repo, commit, core, python, correlation, record.verdict.value, record.finished_at, text)
