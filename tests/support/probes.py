"""Run a probe script in a fresh interpreter and read the JSON report it ends its stderr with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def probe(script: str, *args: str, cwd: Path, timeout_s: float) -> dict[str, object]:
    """Run ``python -c script ARGS`` in ``cwd``; return the JSON object on its last stderr line."""
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout_s,
    )
    result: dict[str, object] = json.loads(proc.stderr.strip().splitlines()[-1])
    return result
