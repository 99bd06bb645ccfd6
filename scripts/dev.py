#!/usr/bin/env python3
"""Set up the project environment and run it: ``python3 scripts/dev.py run|test|bench [ARGS]``.

Needs only Python 3.11+. Creates ``.venv`` on first use (with uv when it is available, which is
much faster, else pip), reinstalls only when ``pyproject.toml`` changes, then:

- ``run [ARGS]``: ``mdp run ARGS`` (no ARGS: the 10 s synthetic demo into ./mdp.db);
- ``test [PYTEST ARGS]``: ruff, mypy --strict (src, packages, tests, bench, scripts), then the
  whole pytest suite;
- ``test-latest [PYTEST ARGS]``: the e2e, fault and contract tests in ``.venv-latest``, which holds
  the newest releases that ``pyproject.toml``'s ranges allow instead of the locked ones (a new
  polars, pyarrow, redis or Core that breaks something shows there the day it appears);
- ``bench NAME``: ``bench/NAME.py``.

``.venv`` holds exactly the versions in ``uv.lock`` (``uv sync --locked``): what CI proved is
what the README's commands install. After changing dependencies in ``pyproject.toml``, run
``.venv/bin/uv lock`` (or ``uv lock``) and commit ``uv.lock``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"


def sh(*cmd: str | Path, check: bool = True) -> int:
    """Run a command from the project root, echoing it."""
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], cwd=ROOT, check=check).returncode


def bootstrap_uv() -> str:
    """Return a uv executable: the one on PATH, else one pip installs into ``.venv``."""
    if not PY.exists():
        sh(sys.executable, "-m", "venv", VENV)
    uv = shutil.which("uv") or (str(BIN / "uv") if (BIN / "uv").exists() else None)
    if uv is None:
        sh(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip", "uv")
        uv = str(BIN / "uv")
    return uv


def uv_env() -> dict[str, str]:
    # Only the registries are reachable: uv must use the interpreter it is given, never fetch one.
    return {**os.environ, "UV_PYTHON_DOWNLOADS": "never"}


def ensure_env(extras: str) -> None:
    """Sync .venv to ``uv.lock`` with ``extras`` unless already up to date."""
    if sys.version_info < (3, 11):  # noqa: UP036 - a fresh machine may have an older python3
        sys.exit(f"Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    stamp = VENV / f".installed-{extras or 'base'}"
    digest = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + (ROOT / "uv.lock").read_bytes()
    ).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and PY.exists():
        return
    uv = bootstrap_uv()
    # --locked: a pyproject.toml changed without `uv lock` fails here rather than installing
    # something nobody tested. --inexact keeps what another extra installed (and uv itself).
    # Bytecode compiled once at install: imports in every test process then read it, even
    # where PYTHONDONTWRITEBYTECODE keeps Python from caching it (half of each start-up).
    env_cmd = [uv, "sync", "--locked", "--inexact", "--quiet", "--compile-bytecode"]
    env_cmd += ["--python", str(PY)]
    for extra in filter(None, extras.split(",")):
        env_cmd += ["--extra", extra]
    print("+", " ".join(env_cmd), flush=True)
    result = subprocess.run(env_cmd, cwd=ROOT, env=uv_env())
    if result.returncode != 0:
        sys.exit("installing from uv.lock failed; if pyproject.toml changed, run `uv lock` first")
    stamp.write_text(digest)


def ensure_latest_env() -> Path:
    """Install the newest releases the ranges allow into .venv-latest; return its python."""
    venv = ROOT / ".venv-latest"
    python = venv / BIN.name / PY.name
    if not python.exists():
        sh(sys.executable, "-m", "venv", venv)
    uv = bootstrap_uv()
    env_cmd = [uv, "pip", "install", "--python", str(python), "--quiet", "--upgrade"]
    env_cmd += ["--resolution", "highest", "--compile-bytecode", "-e", f"{ROOT}[dev]"]
    print("+", " ".join(env_cmd), flush=True)
    subprocess.run(env_cmd, cwd=ROOT, check=True, env=uv_env())
    return python


def drift(python: Path) -> list[str]:
    """Each package whose newest allowed release differs from the locked one, as ``name a -> b``."""
    import tomllib

    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    # A universal lock may hold several versions of one package (per Python version).
    locked: dict[str, set[str]] = {}
    for package in lock["package"]:
        locked.setdefault(package["name"], set()).add(package.get("version", ""))
    freeze = subprocess.run(
        [bootstrap_uv(), "pip", "freeze", "--python", str(python)],
        capture_output=True,
        text=True,
        check=True,
        env=uv_env(),
    ).stdout
    changed = []
    for line in freeze.splitlines():
        name, sep, version = line.partition("==")
        name = name.lower().replace("_", "-")
        if sep and name in locked and version not in locked[name]:
            changed.append(f"{name} {'/'.join(sorted(locked[name]))} -> {version}")
    return changed


def run(args: list[str]) -> int:
    # The README names PostgreSQL sinks, Redis buses and `mdp serve`: they come with the demo.
    ensure_env("postgres,redis,serve")
    return sh(BIN / "mdp", "run", *args, check=False)


def test(args: list[str]) -> int:
    ensure_env("dev")
    sh(BIN / "ruff", "check", "src", "packages", "tests", "bench", "scripts")
    sh(BIN / "ruff", "format", "--check", "src", "packages", "tests", "bench", "scripts")
    sh(BIN / "mypy")  # every path [tool.mypy] files lists: both packages, tests, bench, scripts
    # The project's own bytecode (both distributions), as for the installed packages.
    sh(PY, "-m", "compileall", "-q", "src", "packages")
    return sh(PY, "-m", "pytest", *args, check=False)


def test_latest(args: list[str]) -> int:
    python = ensure_latest_env()
    changed = drift(python)
    print("newer than uv.lock:", ", ".join(changed) or "nothing", flush=True)
    if args:
        suites = args
    elif changed:
        suites = ["tests/e2e", "tests/faults", "tests/contracts", "-q"]
    else:
        # The same versions the locked run just tested: the contract suite alone keeps this
        # leg itself proven until a release makes the two differ.
        print("the newest allowed releases are the locked ones: contract suite only", flush=True)
        suites = ["tests/contracts", "-q"]
    return sh(python, "-m", "pytest", *suites, check=False)


def bench(args: list[str]) -> int:
    ensure_env("dev")
    if not args:
        names = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
        sys.exit("usage: dev.py bench NAME [ARGS]; NAME is one of: " + ", ".join(names))
    return sh(PY, ROOT / "bench" / f"{args[0]}.py", *args[1:], check=False)


def main() -> int:
    commands = {"run": run, "test": test, "test-latest": test_latest, "bench": bench}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    try:
        return commands[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1


if __name__ == "__main__":
    sys.exit(main())
