"""Fixtures of the contract tooling's tests: a local GitHub API stand-in (tests/support)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from github_stub import Scripted, serve_github

__all__ = ["Scripted"]


@pytest.fixture
def github() -> Iterator[tuple[str, Scripted]]:
    """Start a local HTTP server; yield its base URL and the script."""
    with serve_github() as served:
        yield served


@pytest.fixture
def github_api(github: tuple[str, Scripted]) -> tuple[str, Scripted]:
    """The same local server, named apart from the ``github`` module in tests that import it."""
    return github
