"""The fault suite: private servers, and a tally of tried/held per scenario printed at the end.

Every scenario starts its own processes on 127.0.0.1 and cleans them up in ``finally``. Missing
server binaries skip the suite with the reason, except under ``CI=true``, where they fail it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis_profile import load_profile
from redis_server import RedisServer

from .servers import PostgresServer, postgres_bin

load_profile()  # the fuzz tests' hypothesis profile (tests/support)

IN_CI = os.environ.get("CI", "").lower() == "true"


def _missing(what: str) -> None:
    message = f"{what} is not installed"
    if IN_CI:
        pytest.fail(f"{message} (CI=true: the fault suite must run)")
    pytest.skip(message)


@dataclass
class Scenario:
    """How often a fault was tried and how often the pipeline held (what was checked)."""

    name: str
    tried: int = 0
    held: int = 0
    notes: list[str] = field(default_factory=list)

    def record(self, held: bool, note: str = "") -> None:
        self.tried += 1
        self.held += int(held)
        if not held and note:
            self.notes.append(note)


_TALLY: dict[str, Scenario] = {}


@pytest.fixture
def scenario(request: pytest.FixtureRequest) -> Scenario:
    """The tally of the running test's scenario (named after the test)."""
    name = request.node.name.removeprefix("test_")
    return _TALLY.setdefault(name, Scenario(name))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _TALLY:
        return
    terminalreporter.section("fault suite: tried / held")
    width = max(len(name) for name in _TALLY)
    for entry in _TALLY.values():
        terminalreporter.write_line(
            f"{entry.name:<{width}}  {entry.tried:>5} tried  {entry.held:>5} held"
        )
        for note in entry.notes[:5]:
            terminalreporter.write_line(f"{'':<{width}}    - {note}")


@pytest.fixture(scope="session")
def private_redis() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        _missing("redis-server")
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="session")
def private_postgres() -> Iterator[PostgresServer]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        _missing("PostgreSQL (/usr/lib/postgresql/*/bin)")
    assert bin_dir is not None
    server = PostgresServer(bin_dir)
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.remove()
