"""The product as it is used: real matrix cells, the reusable workflow's own steps, fresh envs.

These tests build uv environments resolved from the package index (uv's cache makes a repeat
fast) and run the contract suite in them; they are marked ``slow``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from github_stub import Scripted, serve_github

from market_data_contracts import envs

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() == "true"
# A sibling repository's files (test_toolkit_alone.py): its tests run in its own environment.
collect_ignore = ["sibling"]


def need(what: str, found: object) -> None:
    """Skip (fail under CI=true) when ``found`` is falsy: a tool these tests need is missing."""
    if found:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing (CI=true: the product tests must run)")
    pytest.skip(f"{what} is missing")


@pytest.fixture
def uv() -> str:
    """The uv these tests build environments with."""
    found = envs.uv_path()
    need("uv", found)
    assert found is not None
    return found


@pytest.fixture
def github_api() -> Iterator[tuple[str, Scripted]]:
    """A local GitHub API stand-in on 127.0.0.1 (GitHub itself is never contacted)."""
    with serve_github() as served:
        yield served


def run(
    argv: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; return the finished process (stdout and stderr together, as text)."""
    return subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )


def distributions(python: Path) -> set[str]:
    """Return the distribution names installed for ``python``, normalised (``a-b``, lower case)."""
    probe = "import importlib.metadata as m\nfor d in m.distributions(): print(d.metadata['Name'])"
    done = run([str(python), "-c", probe], timeout=60)
    assert done.returncode == 0, done.stdout
    return {line.strip().lower().replace("_", "-") for line in done.stdout.splitlines()}


def clean_env() -> dict[str, str]:
    """This process's environment without its virtualenv, as a fresh shell would have it."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.pop("MDP_UPDATE_SNAPSHOTS", None)
    return env


PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"
