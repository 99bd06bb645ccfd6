"""Whether this interpreter holds what the contract suite needs, and the command that adds it.

What the suite needs is one list: the extras ``[tool.mdp.contracts] extras`` names
(``settings.ContractsSettings.requirements``), which a matrix cell and the reusable workflow
install. ``mdp contracts run`` checks it before starting pytest, so a missing runner is one line
saying what to install rather than ``No module named pytest``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def missing_requirements(requirements: Sequence[str]) -> list[str]:
    """Return the requirements not installed for this interpreter (a wrong version says so)."""
    missing = []
    for requirement in requirements:
        name, accepts = _parse(requirement)
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(requirement)
            continue
        if not accepts(version):
            missing.append(f"{requirement} (found {version})")
    return missing


def _parse(requirement: str) -> tuple[str, Callable[[str], bool]]:
    try:
        from packaging.requirements import Requirement
    except ImportError:  # packaging comes with pytest: without it, presence is what can be told
        match = _NAME.match(requirement)
        return (match.group(0) if match else requirement), _any_version
    parsed = Requirement(requirement)
    return parsed.name, lambda version: parsed.specifier.contains(version, prereleases=True)


def _any_version(version: str) -> bool:
    return True


def install_command(root: Path, extras: Sequence[str]) -> str:
    """Return the exact command that installs this checkout with ``extras`` for this interpreter."""
    target = shlex.quote(f"{root}[{','.join(extras)}]")
    python = shlex.quote(sys.executable)
    if importlib.util.find_spec("pip") is not None:
        return f"{python} -m pip install -e {target}"
    return f"uv pip install --python {python} -e {target}"


def missing_message(missing: Sequence[str], root: Path, extras: Sequence[str]) -> str:
    """Return the one line saying what the suite lacks here and how to install it."""
    return (
        f"the contract suite needs {', '.join(missing)}, not installed for {sys.executable}; "
        f"install the suite's requirements with: {install_command(root, extras)}"
    )
