"""The ``[tool.mdp.contracts]`` table of ``pyproject.toml``: the default matrix, expectations.

    [tool.mdp.contracts]
    core = ["1.2.0", "1.2.11", "1.2.30", "1.2.31", "latest"]
    python = ["3.11"]
    suite = "tests/contracts"
    extras = ["postgres", "redis", "contracts"]    # the suite's environment: these extras
    expected-failures = [{ core = "1.2.31", reason = "..." }]   # optional "python" key
    repo = "OWNER/NAME"              # this repository in verification records (default: origin)
    downstream = ["OWNER/NAME", ...] # what can-i-deploy requires
    core-repository = "github.com/OWNER/market-data-core"     # the only git source allowed
    source = "src"                   # where the project's code is read for the Core it uses

The project is the nearest folder (above the working directory, else above this package) whose
``pyproject.toml`` has this table: an empty ``[tool.mdp.contracts]`` makes a project of any
repository, with the defaults below.

Unknown keys are rejected, so a misspelled key never silently changes the matrix.

``extras`` is the one list of what the suite needs besides Core and this project: the extras of
``[project.optional-dependencies]`` a matrix cell, the reusable workflow and ``mdp contracts run``
all install or check (``contracts`` holds pytest and its plugins; ``postgres`` and ``redis`` the
drivers of the suite's service tests). ``requirements`` is that list spelled out.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ContractsError

DEFAULT_SUITE = "tests/contracts"
DEFAULT_SOURCE = "src"
_KNOWN_KEYS = {
    "core",
    "python",
    "suite",
    "extras",
    "expected-failures",
    "repo",
    "downstream",
    "core-repository",
    "source",
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
    requirements: tuple[str, ...] = ()  # the extras' requirements, read from pyproject.toml
    expected_failures: tuple[ExpectedFailure, ...] = field(default_factory=tuple)
    repo: str | None = None
    downstream: tuple[str, ...] = ()
    core_repository: str = ""  # host/OWNER/NAME; empty: no git core_ref is accepted
    source: str = DEFAULT_SOURCE  # the project's code, relative to root

    def expected_failure(self, core: str, python: str) -> ExpectedFailure | None:
        """Return the declared expectation for a cell, if any."""
        return next((e for e in self.expected_failures if e.matches(core, python)), None)


def find_project_root(start: Path | None = None) -> Path:
    """Return the checkout whose ``pyproject.toml`` has ``[tool.mdp.contracts]``, upwards."""
    candidates = [start or Path.cwd(), Path(__file__).resolve()]
    for origin in candidates:
        for folder in [origin, *origin.parents]:
            if _is_project(folder / "pyproject.toml"):
                return folder
    raise ContractsError(
        f"no pyproject.toml with a [tool.mdp.contracts] table found above {candidates[0]}"
    )


def _is_project(pyproject: Path) -> bool:
    if not pyproject.is_file():
        return False
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return isinstance(data.get("tool", {}).get("mdp", {}).get("contracts"), dict)


def load_settings(root: Path | None = None) -> ContractsSettings:
    """Read ``[tool.mdp.contracts]`` from the checkout at ``root`` (found when omitted)."""
    root = root or find_project_root()
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    table: dict[str, Any] = data.get("tool", {}).get("mdp", {}).get("contracts", {})
    unknown = set(table) - _KNOWN_KEYS
    if unknown:
        raise ContractsError(f"unknown keys in [tool.mdp.contracts]: {', '.join(sorted(unknown))}")
    extras = tuple(str(name) for name in table.get("extras", ()))
    return ContractsSettings(
        root=root,
        core=tuple(table.get("core", ("latest",))),
        python=tuple(table.get("python", ("3.11",))),
        suite=str(table.get("suite", DEFAULT_SUITE)),
        extras=extras,
        requirements=extras_requirements(data, extras),
        expected_failures=tuple(_expected(item) for item in table.get("expected-failures", ())),
        repo=str(table["repo"]) if table.get("repo") else None,
        downstream=tuple(str(name) for name in table.get("downstream", ())),
        core_repository=str(table.get("core-repository", "")),
        source=str(table.get("source", DEFAULT_SOURCE)),
    )


def _expected(item: Any) -> ExpectedFailure:
    if not isinstance(item, dict) or "core" not in item or "reason" not in item:
        raise ContractsError(f"expected-failures entries need 'core' and 'reason': {item!r}")
    python = item.get("python")
    return ExpectedFailure(
        str(item["core"]), str(item["reason"]), None if python is None else str(python)
    )


def extras_requirements(pyproject: dict[str, Any], extras: tuple[str, ...]) -> tuple[str, ...]:
    """Return the requirements of this project's ``extras``, an extra naming others flattened."""
    project: dict[str, Any] = pyproject.get("project", {})
    declared: dict[str, list[str]] = project.get("optional-dependencies", {})
    name = str(project.get("name", ""))
    found: dict[str, None] = {}
    pending, seen = list(extras), set()
    while pending:
        extra = pending.pop(0)
        if extra in seen:
            continue
        seen.add(extra)
        if extra not in declared:
            raise ContractsError(
                f"[tool.mdp.contracts] extras names {extra!r}, which "
                "[project.optional-dependencies] does not declare"
            )
        for requirement in declared[extra]:
            own = _own_extras(requirement, name)
            if own is None:
                found[requirement] = None
            else:
                pending.extend(own)
    return tuple(found)


def _own_extras(requirement: str, project: str) -> list[str] | None:
    """Return the extras of a requirement on ``project`` itself (``name[a,b]``), else None."""
    name, _, rest = requirement.partition("[")
    if name.strip() != project or not rest:
        return None
    return [extra.strip() for extra in rest.split("]", 1)[0].split(",") if extra.strip()]
