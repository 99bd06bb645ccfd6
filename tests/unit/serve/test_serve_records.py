"""Run records round-trip through SQLite and PostgreSQL; a restart marks unfinished runs."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from market_data_pipeline.errors import UsageError
from market_data_pipeline.serve.records import RunRecord, RunStore, runs_file


def _record(
    run_id: str, status: str, created: str, owner: str = "host:1", lease: str | None = None
) -> RunRecord:
    return RunRecord(
        id=run_id,
        kind="replay",
        status=status,
        created_at=created,
        request={"settings": {"input": ["a.csv"]}},
        dedup_key="k",
        idempotency_key=f"key-{run_id}",
        owner=owner,
        lease_until=lease,
    )


def _round_trip(store: RunStore) -> None:
    store.create_table()
    store.insert(_record("r1", "success", "2026-01-01T00:00:00.000Z"))
    store.insert(_record("r2", "running", "2026-01-01T00:00:01.000Z"))
    store.insert(_record("r3", "pending", "2026-01-01T00:00:02.000Z"))
    done = _record("r1", "success", "2026-01-01T00:00:00.000Z")
    done.report, done.exit_code = {"bars_written": 3}, 0
    store.update(done)
    assert store.get("r1") == done
    assert store.get("nope") is None
    assert store.by_idempotency_key("key-r2") == _record(
        "r2", "running", "2026-01-01T00:00:01.000Z"
    )
    assert store.mark_interrupted("2026-01-02T00:00:00.000Z", "host:1", own=True) == 2
    assert [(r.id, r.status) for r in store.list()] == [
        ("r3", "interrupted"),
        ("r2", "interrupted"),
        ("r1", "success"),
    ]
    assert [r.id for r in store.list(kind="run")] == []


NOW = "2026-01-02T00:00:00.000Z"
LATER = "2026-01-02T00:00:30.000Z"
EARLIER = "2026-01-01T23:59:30.000Z"


def _stored(store: RunStore, run_id: str) -> RunRecord:
    record = store.get(run_id)
    assert record is not None
    return record


def _leases(store: RunStore) -> None:
    """Only runs whose service is gone are interrupted: lease run out, or the caller's own."""
    store.create_table()
    store.insert(_record("mine", "running", NOW, "me:1", LATER))
    store.insert(_record("other", "running", NOW, "other:1", LATER))
    store.insert(_record("expired", "running", NOW, "gone:1", EARLIER))
    store.insert(_record("ancient", "pending", NOW, "old:1", None))
    store.insert(_record("done", "success", NOW, "gone:1", EARLIER))
    assert store.mark_interrupted(NOW, "me:1", own=False) == 1  # a beat: others' expired only
    assert _stored(store, "expired").status == "interrupted"
    store.renew("other:1", "2026-01-02T00:01:00.000Z")
    assert _stored(store, "other").lease_until == "2026-01-02T00:01:00.000Z"
    assert store.mark_interrupted(LATER, "me:1", own=True) == 2  # a start: own and leaseless
    statuses = {r.id: r.status for r in store.list()}
    assert statuses == {
        "mine": "interrupted",
        "other": "running",
        "expired": "interrupted",
        "ancient": "interrupted",
        "done": "success",
    }


def _older_table(conn: Any) -> None:
    columns = ", ".join(f"{name} TEXT" for name in OLD_COLUMNS)
    conn.execute(f"CREATE TABLE mdp_runs ({columns})")
    values = ("r0", "run", "running", NOW, None, None, "{}", "k", None, None, None, None, None)
    marks = ", ".join("?" if isinstance(conn, sqlite3.Connection) else "%s" for _ in values)
    conn.execute(f"INSERT INTO mdp_runs VALUES ({marks})", values)


OLD_COLUMNS = (
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
)


def _migrated(store: RunStore) -> None:
    store.create_table()
    store.create_table()  # once added, the columns are not added again
    old = store.get("r0")
    assert old is not None and old.owner is None and old.lease_until is None
    assert store.mark_interrupted(NOW, "me:1", own=False) == 0  # owner unknown: not a beat's
    assert store.mark_interrupted(NOW, "me:1", own=True) == 1  # a start's: no lease, gone
    store.insert(_record("r1", "running", NOW, "me:1", LATER))
    assert store.get("r1") == _record("r1", "running", NOW, "me:1", LATER)


def test_sqlite_leases(tmp_path: Path) -> None:
    _leases(RunStore(f"sqlite:///{tmp_path / 'mdp.db'}"))


@pytest.mark.postgres
def test_postgres_leases(postgres_url: str) -> None:
    _leases(RunStore(postgres_url))


def test_sqlite_table_of_an_earlier_version_gets_the_owner_columns(tmp_path: Path) -> None:
    store = RunStore(f"sqlite:///{tmp_path / 'mdp.db'}")
    with sqlite3.connect(store.location) as conn:
        _older_table(conn)
    _migrated(store)


@pytest.mark.postgres
def test_postgres_table_of_an_earlier_version_gets_the_owner_columns(postgres_url: str) -> None:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        _older_table(conn)
    _migrated(RunStore(postgres_url))


def test_sqlite_records_live_beside_the_bars_file(tmp_path: Path) -> None:
    store = RunStore(f"sqlite:///{tmp_path / 'mdp.db'}")
    _round_trip(store)
    assert runs_file(tmp_path / "mdp.db") == tmp_path / "mdp.runs.db"
    assert (tmp_path / "mdp.runs.db").exists() and not (tmp_path / "mdp.db").exists()


@pytest.mark.postgres
def test_postgres_records(postgres_url: str) -> None:
    _round_trip(RunStore(postgres_url))


def test_memory_sinks_cannot_hold_records() -> None:
    with pytest.raises(UsageError, match="child processes"):
        RunStore("memory://x")
