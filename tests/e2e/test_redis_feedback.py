"""``mdp run --bus redis://`` in one process reacts to events another process publishes.

Every step waits on what the running pipeline shows on its metrics endpoint (ticks flowing, the
rate scale at 0, back at 1), never on a fixed sleep, so a loaded machine only makes it slower.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from metrics_page import metric
from ports import free_port
from waiting import wait_while_running

MDP = [sys.executable, "-m", "market_data_pipeline.cli"]
SCALE = 'mdp_rate_scale{provider="synthetic"}'
WAIT_S = 90.0  # generous: the machine may be loaded; each wait ends as soon as its condition holds
HARD_HOLD_S = 1.0  # how long the test keeps the pipeline paused before releasing it


@pytest.mark.redis
def test_run_pauses_on_hard_from_another_process(
    tmp_path: Path, redis_url: str, redis_namespace: str
) -> None:
    bus = ["--bus", redis_url, "--namespace", redis_namespace]
    port = free_port()
    run = subprocess.Popen(
        [
            *MDP,
            "run",
            "--rate",
            "2000",
            "--duration",
            "600",  # ended by the test once the scenario is complete
            "--resolution",
            "1s",
            "--sink",
            f"sqlite:///{tmp_path / 'r.db'}",
            "--metrics-port",
            str(port),
            "--json",
            *bus,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_while_running(
            run, lambda: (metric(port, "mdp_ticks_total") or 0) > 0, "ticks flow", WAIT_S
        )
        publish = [*MDP, "feedback", "publish", "--coordinator", "store-remote", *bus]
        subprocess.run([*publish, "--level", "hard"], check=True, capture_output=True)
        wait_while_running(run, lambda: metric(port, SCALE) == 0.0, "the pause", WAIT_S)
        paused_at = time.monotonic()
        wait_while_running(
            run, lambda: time.monotonic() - paused_at > HARD_HOLD_S, "the pause to last", WAIT_S
        )
        subprocess.run([*publish, "--level", "ok"], check=True, capture_output=True)
        wait_while_running(run, lambda: metric(port, SCALE) == 1.0, "the release", WAIT_S)
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=WAIT_S)
    finally:
        run.kill()
    # A stop by SIGTERM: every window is flushed and written; 143 is the shell's code for it.
    assert run.returncode in (0, 143), err
    summary = json.loads(out)
    provider = summary["feedback"]["providers"]["synthetic"]
    assert provider["seconds_at_level"]["hard"] > 0.5
    assert provider["rate_changes"] >= 2
    assert provider["scale"] == 1.0
    assert summary["feedback"]["coordinators"]["store-remote"]["level"] == "ok"
    assert summary["reconciled"] is True
