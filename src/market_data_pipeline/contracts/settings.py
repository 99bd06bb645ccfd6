"""The ``[tool.mdp.contracts]`` table of ``pyproject.toml``: the default matrix, expectations.

    [tool.mdp.contracts]
    core = ["1.2.0", "1.2.11", "1.2.30", "1.2.31", "latest"]
    python = ["3.11"]
    suite = "tests/contracts"
    extras = ["redis"]
    suite-requirements = ["pytest>=8", ...]
    expected-failures = [{ core = "1.2.31", reason = "..." }]   # optional "python" key
    repo = "OWNER/NAME"              # this repository in verification records (default: origin)
    downstream = ["OWNER/NAME", ...] # what can-i-deploy requires
    core-repository = "github.com/OWNER/market-data-core"     # the only git source allowed

Unknown keys are rejected, so a misspelled key never silently changes the matrix.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ContractsError

PROJECT_NAME = "market-data-pipeline"
DEFAULT_SUITE = "tests/contracts"
_KNOWN_KEYS = {
    "core",
    "python",
    "suite",
    "extras",
    "suite-requirements",
    "expected-failures",
    "repo",
    "downstream",
    "core-repository",
}


@dataclass(frozen=True)
class ExpectedFailure:
    """A cell that is known to fail, and why; ``python=None`` matches every Python."""

    core: str
    reason: str
    python: str | None = None

    def matches(self, core: str, python: str) -> bool:
        """Return whether this expectation covers the cell (core, python)."""
        return self.core == core and (self.python is None or self.python == python)


@dataclass(frozen=True)
class ContractsSettings:
    """What ``mdp contracts`` runs by default, read from the project's ``pyproject.toml``."""

    root: Path
    core: tuple[str, ...] = ("latest",)
    python: tuple[str, ...] = ("3.11",)
    suite: str = DEFAULT_SUITE
    extras: tuple[str, ...] = ()
    suite_requirements: tuple[str, ...] = ("pytest>=8",)
    expected_failures: tuple[ExpectedFailure, ...] = field(default_factory=tuple)
    repo: str | None = None
    downstream: tuple[str, ...] = ()
    core_repository: str = ""  # host/OWNER/NAME; empty: no git core_ref is accepted

    def expected_failure(self, core: str, python: str) -> ExpectedFailure | None:
        """Return the declared expectation for a cell, if any."""
        return next((e for e in self.expected_failures if e.matches(core, python)), None)


def find_project_root(start: Path | None = None) -> Path:
    """Return the checkout holding this project's ``pyproject.toml``, searching upwards."""
    candidates = [start or Path.cwd(), Path(__file__).resolve()]
    for origin in candidates:
        for folder in [origin, *origin.parents]:
            if _is_project(folder / "pyproject.toml"):
                return folder
    raise ContractsError(f"no {PROJECT_NAME} checkout found above {candidates[0]}")


def _is_project(pyproject: Path) -> bool:
    if not pyproject.is_file():
        return False
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return bool(data.get("project", {}).get("name") == PROJECT_NAME)


def load_settings(root: Path | None = None) -> ContractsSettings:
    """Read ``[tool.mdp.contracts]`` from the checkout at ``root`` (found when omitted)."""
    root = root or find_project_root()
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    table: dict[str, Any] = data.get("tool", {}).get("mdp", {}).get("contracts", {})
    unknown = set(table) - _KNOWN_KEYS
    if unknown:
        raise ContractsError(f"unknown keys in [tool.mdp.contracts]: {', '.join(sorted(unknown))}")
    return ContractsSettings(
        root=root,
        core=tuple(table.get("core", ("latest",))),
        python=tuple(table.get("python", ("3.11",))),
        suite=str(table.get("suite", DEFAULT_SUITE)),
        extras=tuple(table.get("extras", ())),
        suite_requirements=tuple(table.get("suite-requirements", ("pytest>=8",))),
        expected_failures=tuple(_expected(item) for item in table.get("expected-failures", ())),
        repo=str(table["repo"]) if table.get("repo") else None,
        downstream=tuple(str(name) for name in table.get("downstream", ())),
        core_repository=str(table.get("core-repository", "")),
    )


def _expected(item: Any) -> ExpectedFailure:
    if not isinstance(item, dict) or "core" not in item or "reason" not in item:
        raise ContractsError(f"expected-failures entries need 'core' and 'reason': {item!r}")
    python = item.get("python")
    return ExpectedFailure(
        str(item["core"]), str(item["reason"]), None if python is None else str(python)
    )
