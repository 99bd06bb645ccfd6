#!/usr/bin/env python3
"""Set up the project environment and run it: ``python3 scripts/dev.py run|test|bench [ARGS]``.

Needs only Python 3.11+. Creates ``.venv`` on first use (with uv when it is available, which is
much faster, else pip), reinstalls only when ``pyproject.toml`` changes, then:

- ``run [ARGS]``: ``mdp run ARGS`` (no ARGS: the 10 s synthetic demo into ./mdp.db);
- ``test [PYTEST ARGS]``: ruff, mypy --strict (src, tests, bench, scripts), then the whole pytest
  suite;
- ``bench NAME``: ``bench/NAME.py``.
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


def ensure_env(extras: str) -> None:
    """Create .venv and install the project with ``extras`` unless already up to date."""
    if sys.version_info < (3, 11):  # noqa: UP036 - a fresh machine may have an older python3
        sys.exit(f"Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    stamp = VENV / f".installed-{extras or 'base'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest and PY.exists():
        return
    if not PY.exists():
        sh(sys.executable, "-m", "venv", VENV)
    target = f"{ROOT}[{extras}]" if extras else str(ROOT)
    uv = shutil.which("uv")
    if uv is None:
        sh(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip", "uv")
        uv = str(BIN / "uv")
    # Bytecode compiled once at install: imports in every test process then read it, even
    # where PYTHONDONTWRITEBYTECODE keeps Python from caching it (half of each start-up).
    env_cmd = [uv, "pip", "install", "--python", str(PY), "--quiet", "--compile-bytecode"]
    env_cmd += ["-e", target]
    print("+", " ".join(env_cmd), flush=True)
    subprocess.run(env_cmd, cwd=ROOT, check=True)
    stamp.write_text(digest)


def run(args: list[str]) -> int:
    # The README names PostgreSQL sinks, Redis buses and `mdp serve`: they come with the demo.
    ensure_env("postgres,redis,serve")
    return sh(BIN / "mdp", "run", *args, check=False)


def test(args: list[str]) -> int:
    ensure_env("dev")
    sh(BIN / "ruff", "check", "src", "tests", "bench", "scripts")
    sh(BIN / "ruff", "format", "--check", "src", "tests", "bench", "scripts")
    sh(BIN / "mypy")  # every path [tool.mypy] files lists: src, tests, bench and scripts
    sh(PY, "-m", "compileall", "-q", "src")  # the project's own bytecode, as for the packages
    return sh(PY, "-m", "pytest", *args, check=False)


def bench(args: list[str]) -> int:
    ensure_env("dev")
    if not args:
        names = sorted(p.stem for p in (ROOT / "bench").glob("bench_*.py"))
        sys.exit("usage: dev.py bench NAME [ARGS]; NAME is one of: " + ", ".join(names))
    return sh(PY, ROOT / "bench" / f"{args[0]}.py", *args[1:], check=False)


def main() -> int:
    commands = {"run": run, "test": test, "bench": bench}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    try:
        return commands[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1


if __name__ == "__main__":
    sys.exit(main())
