"""Build one isolated environment per matrix cell with uv, holding exactly the Core asked for.

Steps for a cell (Core ``X``, Python ``P``), sharing one uv cache so a warm run only links files:

1. ``uv venv`` with the interpreter for ``P`` (never downloaded: a missing Python skips the cell);
2. ``uv pip install market-data-core==X`` alone (``latest`` installs the newest and records it);
3. the project from the checkout (editable, with the extras ``[tool.mdp.contracts] extras`` names:
   the suite's one list of requirements) and each uv workspace member it declares (editable too),
   with an override file pinning ``market-data-core==X`` so no later step can move Core;
4. read the installed Core version from package metadata and fail if it is not ``X``.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .errors import CellSetupError

CORE_DISTRIBUTION = "market-data-core"
LATEST = "latest"
_VERSION_PROBE = "import importlib.metadata as m; print(m.version('market-data-core'))"
_SETUP_TIMEOUT_S = 600


@dataclass(frozen=True)
class CellEnv:
    """A built cell environment: its folder, interpreter and the Core version installed in it."""

    path: Path
    python: Path
    core_version: str


def find_python(version: str) -> Path | None:
    """Return an interpreter for ``version`` (e.g. ``3.12``) on this machine, or None."""
    candidates: list[str] = []
    on_path = shutil.which(f"python{version}")
    if on_path:
        candidates.append(on_path)
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates.extend(sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}")))
    candidates.extend(_uv_find(version))
    return next((Path(c) for c in candidates if _reports_version(c, version)), None)


def uv_path() -> str | None:
    """Return the uv beside this interpreter (the dev dependency), else the one on PATH."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() else shutil.which("uv")


def _uv_find(version: str) -> list[str]:
    uv = uv_path()
    if uv is None:
        return []
    done = subprocess.run(
        [uv, "python", "find", "--no-python-downloads", version],
        capture_output=True,
        text=True,
        check=False,
    )
    return [done.stdout.strip()] if done.returncode == 0 and done.stdout.strip() else []


def _reports_version(python: str, version: str) -> bool:
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    try:
        done = subprocess.run(
            [python, "-c", probe], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return False  # a broken shim or a stale path
    return done.returncode == 0 and done.stdout.strip() == version


def core_requirement(core: str) -> str:
    """Return the requirement string that installs ``core`` (a version, ``latest`` or a git ref)."""
    if core == LATEST:
        return CORE_DISTRIBUTION
    if "://" in core or core.startswith("git+"):
        return f"{CORE_DISTRIBUTION} @ {core}"
    return f"{CORE_DISTRIBUTION}=={core}"


def build_cell_env(
    *,
    root: Path,
    core: str,
    python: Path,
    path: Path,
    extras: tuple[str, ...],
    log: Path,
) -> CellEnv:
    """Create (or refresh) the environment at ``path``; raise ``CellSetupError`` on any failure.

    An environment left by an earlier run with the same inputs (Core asked, interpreter, extras,
    ``pyproject.toml``) is refreshed in place: Core's install step runs again (for
    ``latest`` it moves to the newest release) and the project step is skipped, its editable
    install already points at this checkout. Anything else starts from an empty environment.
    """
    key = _cell_key(root, core, python, extras)
    marker = path / ".mdp-cell-key"
    uv = _uv()
    reuse = marker.is_file() and marker.read_text(encoding="utf-8") == key
    if not reuse:
        if path.exists():
            shutil.rmtree(path)
        _step(
            log,
            [uv, "venv", "--quiet", "--no-python-downloads", "--python", str(python), str(path)],
        )
    env_python = path / "bin" / "python"
    pip = [uv, "pip", "install", "--quiet", "--python", str(env_python)]
    upgrade = ["--upgrade-package", CORE_DISTRIBUTION] if core == LATEST else []
    _step(log, [*pip, *upgrade, core_requirement(core)])
    installed = installed_core(env_python)
    if reuse and installed == _pinned_core(path):
        verify_core(env_python, installed if core == LATEST or "://" in core else core)
        return CellEnv(path=path, python=env_python, core_version=installed)
    overrides = path / "core-override.txt"
    overrides.write_text(f"{CORE_DISTRIBUTION}=={installed}\n", encoding="utf-8")
    project = f"{root}[{','.join(extras)}]" if extras else str(root)
    members = [arg for member in workspace_members(root) for arg in ("-e", str(member))]
    _step(log, [*pip, "--override", str(overrides), "-e", project, *members])
    verify_core(env_python, installed if core == LATEST or "://" in core else core)
    marker.write_text(key, encoding="utf-8")
    return CellEnv(path=path, python=env_python, core_version=installed)


def _pinned_core(path: Path) -> str:
    override = path / "core-override.txt"
    if not override.is_file():
        return ""
    return override.read_text(encoding="utf-8").split("==")[-1].strip()


def workspace_members(root: Path) -> list[Path]:
    """Return the uv workspace members ``root``'s ``pyproject.toml`` declares, sorted.

    ``uv pip install -e ROOT`` installs a member the project depends on from its folder but not
    editable: a reused cell would keep a stale copy. Each is installed editable as well.
    """
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    workspace = data.get("tool", {}).get("uv", {}).get("workspace", {})
    excluded = {p for pattern in workspace.get("exclude", []) for p in root.glob(pattern)}
    found = {p for pattern in workspace.get("members", []) for p in root.glob(pattern)}
    return sorted(p for p in found - excluded if (p / "pyproject.toml").is_file())


def _cell_key(root: Path, core: str, python: Path, extras: tuple[str, ...]) -> str:
    pyprojects = b"\0".join(
        (folder / "pyproject.toml").read_bytes() for folder in [root, *workspace_members(root)]
    )
    parts = [core, str(python.resolve()), ",".join(extras)]
    digest = hashlib.sha256("\0".join(parts).encode() + b"\0" + pyprojects)
    return digest.hexdigest()


def installed_core(python: Path) -> str:
    """Return the Core version installed for ``python``, from package metadata."""
    done = subprocess.run(
        [str(python), "-c", _VERSION_PROBE], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise CellSetupError(f"market-data-core is not importable: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


def verify_core(python: Path, expected: str) -> None:
    """Raise ``CellSetupError`` unless exactly Core ``expected`` is installed for ``python``."""
    found = installed_core(python)
    if found != expected:
        raise CellSetupError(
            f"market-data-core {expected} was asked for but {found} is installed: "
            "a later install step replaced it"
        )


def _uv() -> str:
    uv = uv_path()
    if uv is None:
        raise CellSetupError("uv is not installed (pip install uv)")
    return uv


def _step(log: Path, argv: list[str]) -> None:
    with log.open("a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(argv)}\n")
        out.flush()
        try:
            done = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, timeout=_SETUP_TIMEOUT_S, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise CellSetupError(f"{argv[1:3]} timed out after {_SETUP_TIMEOUT_S} s") from exc
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8").strip().splitlines()[-3:]
        raise CellSetupError(f"`{' '.join(argv[:3])}` failed: {' | '.join(tail)}")


def build_core_env(*, core: str, python: Path, path: Path, log: Path) -> CellEnv:
    """Create an environment at ``path`` holding only Core ``core`` (for ``surface --core``)."""
    if path.exists():
        shutil.rmtree(path)
    uv = _uv()
    _step(log, [uv, "venv", "--quiet", "--no-python-downloads", "--python", str(python), str(path)])
    env_python = path / "bin" / "python"
    _step(
        log, [uv, "pip", "install", "--quiet", "--python", str(env_python), core_requirement(core)]
    )
    installed = installed_core(env_python)
    if core != LATEST and "://" not in core:
        verify_core(env_python, core)
    return CellEnv(path=path, python=env_python, core_version=installed)
