"""Compute the Core surface this project depends on, for the installed Core or any release.

The symbols come from reading the project's source (``usage.core_symbols`` on the folder
``[tool.mdp.contracts] source`` names); the description is made by ``surface.py`` run with the
interpreter of an environment holding the Core asked for.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from . import envs, surface
from .errors import ContractsError
from .settings import load_settings
from .usage import core_symbols


def project_symbols() -> list[str]:
    """Return the Core symbols the project's source uses; raise ``ContractsError`` without one."""
    conf = load_settings()
    source = conf.root / conf.source
    if not source.is_dir():
        raise ContractsError(f"{source} is not a folder: set [tool.mdp.contracts] source")
    return core_symbols(source)


def installed_surface() -> dict[str, Any]:
    """Return the surface of the Core installed alongside this interpreter."""
    return surface.build_surface(project_symbols())


def release_surface(core: str, python_version: str | None = None) -> dict[str, Any]:
    """Return the surface of Core ``core`` (a version or ``latest``) built in a throwaway env."""
    version = python_version or f"{sys.version_info[0]}.{sys.version_info[1]}"
    python = envs.find_python(version)
    if python is None:
        raise ContractsError(f"Python {version} is not installed on this machine")
    with tempfile.TemporaryDirectory(prefix="mdp-surface-") as tmp:
        env = envs.build_core_env(
            core=core, python=python, path=Path(tmp) / "env", log=Path(tmp) / "setup.log"
        )
        return surface_with(env.python)


def surface_with(python: Path) -> dict[str, Any]:
    """Run ``surface.py`` with another interpreter and return its JSON."""
    done = subprocess.run(
        [str(python), surface.__file__],
        input=json.dumps(project_symbols()),
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise ContractsError(f"surface failed under {python}: {done.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def load_surface(spec: str) -> dict[str, Any]:
    """Return a surface from a JSON file path, or build it for a Core version / ``latest``."""
    path = Path(spec)
    if spec.endswith(".json") or path.is_file():
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ContractsError(f"cannot read surface file {spec}: {exc}") from exc
        return data
    return release_surface(spec)
