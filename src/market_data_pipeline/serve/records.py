"""Run records in the store: table ``mdp_runs`` (SQLite or PostgreSQL), one row per run.

The service keeps live progress in memory; the store holds what must outlive the service: each
run's request (secrets masked), status, times, exit code, error and final report. A restarted
service reads the history from here and marks the runs it did not see end ``interrupted``.
Calls are synchronous (the service runs them in a worker thread) and each opens its own short
connection, so a store that restarts between two calls is simply reconnected.

Each run has an ``owner``, the service instance driving it (``host:port``), and a lease
(``lease_until``) that instance renews while it runs: replicas sharing one store tell a run
whose service is gone (its lease ran out, or it is the starting service's own earlier instance)
from one another replica is driving. A table of an earlier version gets the two columns in place.

In PostgreSQL the table sits beside ``bars``. SQLite has one writer at a time and a replay holds
its write transaction from its first bar to its commit, so a record written meanwhile would
wait for the whole replay (or break the run's transaction): for ``sqlite:///x.db`` the records
live in the sibling file ``x.runs.db``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..sinks.urls import parse_sink_url

TABLE = "mdp_runs"
UNFINISHED = ("pending", "running")
STATUSES = ("pending", "running", "success", "failed", "cancelled", "interrupted")
CONNECT_TIMEOUT_S = 5

_COLUMNS = (
    "id",
    "kind",
    "status",
    "created_at",
    "started_at",
    "finished_at",
    "request",
    "dedup_key",
    "idempotency_key",
    "exit_code",
    "error",
    "report",
    "resumed_from",
    "owner",
    "lease_until",
)
# Columns a later version added: an older table gets them in place (ALTER TABLE ADD COLUMN).
_LATER_COLUMNS = (("owner", "TEXT"), ("lease_until", "TEXT"))

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    request         TEXT NOT NULL,
    dedup_key       TEXT NOT NULL,
    idempotency_key TEXT,
    exit_code       INTEGER,
    error           TEXT,
    report          TEXT,
    resumed_from    TEXT,
    owner           TEXT,
    lease_until     TEXT
)
"""


@dataclass
class RunRecord:
    """One run as stored: ``request`` is the settings asked for (masked), ``report`` the end."""

    id: str
    kind: str  # "run" (POST /v1/runs) or "replay" (POST /v1/replay/ticks)
    status: str
    created_at: str
    request: dict[str, Any]
    dedup_key: str
    idempotency_key: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    error: str | None = None
    report: dict[str, Any] | None = None
    resumed_from: str | None = None
    owner: str | None = None  # the service instance driving it: host:port
    lease_until: str | None = None  # the owner renews it while it runs

    def row(self) -> tuple[Any, ...]:
        """Return the values in ``_COLUMNS`` order (JSON columns as text)."""
        values = {
            **{name: getattr(self, name) for name in _COLUMNS},
            "request": json.dumps(self.request, sort_keys=True),
            "report": None if self.report is None else json.dumps(self.report),
        }
        return tuple(values[name] for name in _COLUMNS)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> RunRecord:
        """Rebuild a record from a stored row."""
        values = dict(zip(_COLUMNS, row, strict=True))
        values["request"] = json.loads(values["request"])
        values["report"] = None if values["report"] is None else json.loads(values["report"])
        return cls(**values)


def runs_file(bars_file: Path) -> Path:
    """The SQLite file of the run records of the store ``bars_file`` (``x.db``: ``x.runs.db``)."""
    return bars_file.with_name(f"{bars_file.stem}.runs{bars_file.suffix or '.db'}")


class RunStore:
    """Read and write ``mdp_runs`` in the store a sink URL names (``sqlite://``, ``postgresql://``)."""

    def __init__(self, sink_url: str) -> None:
        target = parse_sink_url(sink_url)
        if target.backend == "memory" or target.location == ":memory:":
            raise UsageError(
                f"{sink_url} lives inside one process, and runs are child processes: serve a"
                " sqlite:///path.db or postgresql://... store"
            )
        self.backend = target.backend
        self.location = target.location
        if self.backend == "sqlite":
            self.location = str(runs_file(Path(target.location)))
        self._mark = "?" if self.backend == "sqlite" else "%s"

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        if self.backend == "sqlite":
            Path(self.location).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.location, timeout=CONNECT_TIMEOUT_S, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                yield conn
            finally:
                conn.close()
            return
        import psycopg

        with psycopg.connect(
            self.location, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        ) as pg:
            yield pg

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._connect() as conn:
            cursor = conn.execute(sql.replace("?", self._mark), tuple(params))
            return list(cursor.fetchall()) if cursor.description else []

    def create_table(self) -> None:
        """Create ``mdp_runs`` when missing; add the columns a later version added."""
        self._execute(_SCHEMA)
        if self.backend == "postgresql":  # several replicas may start at once: IF NOT EXISTS
            for name, sql_type in _LATER_COLUMNS:
                self._execute(f"ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS {name} {sql_type}")
            return
        have = {str(row[1]) for row in self._execute(f"PRAGMA table_info({TABLE})")}
        for name, sql_type in _LATER_COLUMNS:
            if name not in have:
                self._execute(f"ALTER TABLE {TABLE} ADD COLUMN {name} {sql_type}")

    def ping(self) -> None:
        """Raise unless the store answers a query."""
        self._execute("SELECT 1")

    def insert(self, record: RunRecord) -> None:
        """Store a new run."""
        marks = ", ".join("?" for _ in _COLUMNS)
        self._execute(f"INSERT INTO {TABLE} ({', '.join(_COLUMNS)}) VALUES ({marks})", record.row())

    def update(self, record: RunRecord) -> None:
        """Store a run's new status, times, exit code, error and report."""
        names = [name for name in _COLUMNS if name != "id"]
        values = record.row()
        assignments = ", ".join(f"{name} = ?" for name in names)
        self._execute(f"UPDATE {TABLE} SET {assignments} WHERE id = ?", (*values[1:], values[0]))

    def get(self, run_id: str) -> RunRecord | None:
        """Return one run, or None."""
        rows = self._execute(f"SELECT {', '.join(_COLUMNS)} FROM {TABLE} WHERE id = ?", (run_id,))
        return RunRecord.from_row(rows[0]) if rows else None

    def by_idempotency_key(self, key: str) -> RunRecord | None:
        """Return the run an ``Idempotency-Key`` created, or None."""
        rows = self._execute(
            f"SELECT {', '.join(_COLUMNS)} FROM {TABLE} WHERE idempotency_key = ?"
            " ORDER BY created_at DESC LIMIT 1",
            (key,),
        )
        return RunRecord.from_row(rows[0]) if rows else None

    def unfinished_twin(self, kind: str, dedup_key: str) -> RunRecord | None:
        """Return a pending or running run started by an identical request (no key), or None."""
        rows = self._execute(
            f"SELECT {', '.join(_COLUMNS)} FROM {TABLE} WHERE kind = ? AND dedup_key = ?"
            " AND idempotency_key IS NULL AND status IN ('pending', 'running')"
            " ORDER BY created_at DESC LIMIT 1",
            (kind, dedup_key),
        )
        return RunRecord.from_row(rows[0]) if rows else None

    def list(self, *, kind: str | None = None, limit: int = 200) -> list[RunRecord]:
        """Return the latest runs first (of one kind when given)."""
        where, params = ("WHERE kind = ?", (kind,)) if kind else ("", ())
        rows = self._execute(
            f"SELECT {', '.join(_COLUMNS)} FROM {TABLE} {where}"
            " ORDER BY created_at DESC, id DESC LIMIT ?",
            (*params, limit),
        )
        return [RunRecord.from_row(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Return how many runs are recorded in each status."""
        rows = self._execute(f"SELECT status, COUNT(*) FROM {TABLE} GROUP BY status")
        return {str(status): int(count) for status, count in rows}

    def renew(self, owner: str, until: str) -> None:
        """Extend to ``until`` the lease of every unfinished run ``owner`` drives."""
        self._execute(
            f"UPDATE {TABLE} SET lease_until = ? WHERE owner = ?"
            " AND status IN ('pending', 'running')",
            (until, owner),
        )

    def mark_interrupted(self, now: str, owner: str, *, own: bool) -> int:
        """Mark ``interrupted`` the unfinished runs whose service is gone; return how many.

        Gone: its lease ran out before ``now`` and it is not ``owner``'s. With ``own`` (a
        service starting), also every run of ``owner`` (its earlier instance) and every run
        without a lease (an earlier version's, which marked every unfinished run at its start).
        """
        error = "the service stopped before the run ended"
        where = (
            "lease_until IS NULL OR lease_until < ? OR owner = ?"
            if own
            else ("lease_until < ? AND owner <> ?")
        )
        with self._connect() as conn:
            sql = (
                f"UPDATE {TABLE} SET status = 'interrupted', finished_at = ?,"
                f" error = COALESCE(error, ?) WHERE status IN ('pending', 'running') AND ({where})"
            )
            cursor = conn.execute(sql.replace("?", self._mark), (now, error, now, owner))
            return int(cursor.rowcount or 0)
