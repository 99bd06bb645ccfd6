"""Without an optional driver, ``mdp`` names the extra to install, literally, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Runs mdp in a fresh interpreter where the optional drivers cannot be found or imported.
_WITHOUT_DRIVERS = """
import importlib.util, sys
DRIVERS = ("psycopg", "redis", "nats")

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in DRIVERS:
            raise ModuleNotFoundError(f"No module named {name!r}")
        return None

sys.meta_path.insert(0, Absent())
found = importlib.util.find_spec
importlib.util.find_spec = lambda name, package=None: (
    None if name.split(".")[0] in DRIVERS else found(name, package)
)
from market_data_pipeline.cli.entry import main
sys.argv[0] = "mdp"
sys.exit(main())
"""


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["run", "-n", "10", "--sink", "postgresql://u@127.0.0.1/test"], "postgres"),
        (["run", "-n", "10", "--bus", "redis://127.0.0.1:6379/0"], "redis"),
        (["bars", "--sink", "postgresql://u@127.0.0.1/test"], "postgres"),
        (["feedback", "tail", "--bus", "redis://127.0.0.1:6379/0"], "redis"),
        (["feedback", "dlq", "--bus", "redis://127.0.0.1:6379/0"], "redis"),
        (["feedback", "publish", "-l", "hard", "--bus", "redis://127.0.0.1:6379/0"], "redis"),
        (["publish", "--ticks", "10"], "nats"),
    ],
)
def test_a_missing_driver_names_its_extra(args: list[str], extra: str, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _WITHOUT_DRIVERS, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"pip install 'market-data-pipeline[{extra}]'" in proc.stderr  # not eaten as markup
    assert "Traceback" not in proc.stderr
