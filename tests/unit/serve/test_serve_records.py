"""Run records round-trip through SQLite and PostgreSQL; a restart marks unfinished runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from market_data_pipeline.errors import UsageError
from market_data_pipeline.serve.records import RunRecord, RunStore, runs_file


def _record(run_id: str, status: str, created: str) -> RunRecord:
    return RunRecord(
        id=run_id,
        kind="replay",
        status=status,
        created_at=created,
        request={"settings": {"input": ["a.csv"]}},
        dedup_key="k",
        idempotency_key=f"key-{run_id}",
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
    assert store.mark_interrupted("2026-01-02T00:00:00.000Z") == 2
    assert [(r.id, r.status) for r in store.list()] == [
        ("r3", "interrupted"),
        ("r2", "interrupted"),
        ("r1", "success"),
    ]
    assert [r.id for r in store.list(kind="run")] == []


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
