"""One fixture, ``sink_url``, that runs a test on a fresh SQLite file and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sink_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL to an empty store: a SQLite file under ``tmp_path``, or a private PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bars.db'}"  # tmp_path is absolute: sqlite:////tmp/...
    url: str = request.getfixturevalue("postgres_url")
    return url
