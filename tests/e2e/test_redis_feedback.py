"""``mdp run --bus redis://`` in one process reacts to events another process publishes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

MDP = [sys.executable, "-m", "market_data_pipeline.cli"]


@pytest.mark.redis
def test_run_pauses_on_hard_from_another_process(
    tmp_path: Path, redis_url: str, redis_namespace: str
) -> None:
    bus = ["--bus", redis_url, "--namespace", redis_namespace]
    run = subprocess.Popen(
        [
            *MDP,
            "run",
            "--rate",
            "2000",
            "--duration",
            "9",
            "--resolution",
            "1s",
            "--sink",
            f"sqlite:///{tmp_path / 'r.db'}",
            "--json",
            *bus,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(3)
        publish = [*MDP, "feedback", "publish", "--coordinator", "store-remote", *bus]
        subprocess.run([*publish, "--level", "hard"], check=True, capture_output=True)
        time.sleep(2)
        subprocess.run([*publish, "--level", "ok"], check=True, capture_output=True)
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
    assert run.returncode == 0, err
    summary = json.loads(out)
    provider = summary["feedback"]["providers"]["synthetic"]
    assert provider["seconds_at_level"]["hard"] > 0.5
    assert provider["rate_changes"] >= 2
    assert provider["scale"] == 1.0
    assert summary["feedback"]["coordinators"]["store-remote"]["level"] == "ok"
    assert summary["reconciled"] is True
