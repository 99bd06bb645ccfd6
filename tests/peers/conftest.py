"""The real sibling packages, from the package index, in one throwaway uv environment per session.

Tests here are marked ``peers``. The environment holds ``market-data-store`` and
``market-data-ibkr`` at the releases pinned below, installed without their server dependencies
(FastAPI, SQLAlchemy, database drivers: not needed to publish feedback or to fail to connect), the
few packages they import, and this project (editable) with its conformance kit. uv's cache makes
a rebuild take seconds; the environment lives in pytest's temporary folder and is built once per
test session. Without uv or without the index the tests skip, except under ``CI=true``.

``downstream/`` holds test modules written as a sibling repository would write them (subclasses
of the kit's base classes); they run inside the peer environment, never in this one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).parent
DOWNSTREAM = HERE / "downstream"
collect_ignore = ["downstream"]

# Pinned so that a new sibling release cannot turn this suite red on its own.
PEERS = ["market-data-store==0.6.73", "market-data-ibkr==1.1.7"]
# What the peers import on the paths exercised here; their declared requirements (servers, ORMs,
# database drivers) are left out.
PEER_IMPORTS = [
    "market-data-core==1.4.61",
    "loguru>=0.7",
    "prometheus-client>=0.20,<0.22",
    "pydantic-settings>=2",
    "python-dotenv>=1",
    "ib_insync>=0.9.86,<1",
    "pytest>=8",
    "pytest-asyncio>=0.24",
    "pytest-timeout>=2.3",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.peers)


@dataclass(frozen=True)
class PeerEnv:
    """A Python with the real sibling packages and this project installed."""

    python: Path

    def run(
        self, *args: str, env: dict[str, str] | None = None, timeout_s: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python ARGS`` in the peer environment; capture text output."""
        return subprocess.run(
            [str(self.python), *args],
            capture_output=True,
            text=True,
            env={**os.environ, **(env or {})},
            timeout=timeout_s,
            check=False,
        )


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message} (CI=true: the peers environment is required)")
    pytest.skip(message)


def _uv(*args: str) -> subprocess.CompletedProcess[str]:
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    return subprocess.run([uv, *args], capture_output=True, text=True, check=False, timeout=600)


@pytest.fixture(scope="session")
def peer_env(tmp_path_factory: pytest.TempPathFactory) -> PeerEnv:
    """Build (once per session) the environment with the real sibling packages."""
    venv = tmp_path_factory.mktemp("peers") / "venv"
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    steps = [
        ["venv", "--quiet", "--python", sys.executable, str(venv)],
        ["pip", "install", "--quiet", "--python", str(python), "--no-deps", *PEERS],
        ["pip", "install", "--quiet", "--python", str(python), "-e", f"{ROOT}[redis]"],
        ["pip", "install", "--quiet", "--python", str(python), *PEER_IMPORTS],
    ]
    for step in steps:
        done = _uv(*step)
        if done.returncode != 0:
            _unavailable(
                f"cannot build the peers environment: uv {step[0]} {step[1]}: "
                f"{done.stderr.strip()[-500:]}"
            )
    return PeerEnv(python)
