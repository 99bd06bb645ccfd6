"""``mdp run`` obeys the real market-data-store: its stream key, its nested envelope, its levels.

The store (0.6.73, from the package index) publishes through Core's bus with its default
settings: stream ``{MD_NAMESPACE}:{MD_NAMESPACE}.telemetry.feedback``, the FeedbackEvent inside an
envelope inside Core's envelope. The run listens there with one option, ``--feedback-stream``; the
test watches the run's own metrics and waits for each state, never for a fixed time.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
import redis

from .conftest import DOWNSTREAM, PeerEnv

pytestmark = pytest.mark.redis

MDP = [sys.executable, "-m", "market_data_pipeline.cli"]
STORE_KEY = "{namespace}:{namespace}.telemetry.feedback"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _metric(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    for line in body.splitlines():
        if line.startswith(f"{name} "):
            return float(line.split()[1])
    return None


def _wait_for(condition: Callable[[], bool], what: str, run: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if run.poll() is not None:
            pytest.fail(f"mdp run ended (exit {run.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def _publish(peer_env: PeerEnv, redis_url: str, namespace: str, *levels: str) -> None:
    store_env = {"EVENT_BUS_BACKEND": "redis", "REDIS_URL": redis_url, "MD_NAMESPACE": namespace}
    done = peer_env.run(
        str(DOWNSTREAM / "publish_store_feedback.py"), "store-real", *levels, env=store_env
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_run_pauses_on_the_stores_hard_and_resumes_on_its_ok(
    peer_env: PeerEnv, tmp_path: Path, redis_url: str, redis_namespace: str
) -> None:
    port = _free_port()
    scale = 'mdp_rate_scale{provider="synthetic"}'
    argv = [*MDP, "run", "--rate", "2000", "--duration", "120", "--resolution", "1s"]
    argv += ["--sink", f"sqlite:///{tmp_path / 'store.db'}", "--json", "--metrics-port", str(port)]
    argv += ["--bus", redis_url, "--namespace", redis_namespace, "--feedback-stream", STORE_KEY]
    argv += ["--stale-after", "600"]  # the store sends no heartbeat: only its ok may resume us
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    key = STORE_KEY.format(namespace=redis_namespace)
    raw = redis.Redis.from_url(redis_url)
    try:
        _wait_for(lambda: _metric(port, scale) == 1.0, "the run to start at full rate", run)
        _publish(peer_env, redis_url, redis_namespace, "hard")
        _wait_for(lambda: _metric(port, scale) == 0.0, "the pause on the store's hard", run)
        ticks = _metric(port, "mdp_ticks_total")
        _publish(peer_env, redis_url, redis_namespace, "ok")
        _wait_for(lambda: _metric(port, scale) == 1.0, "the resume on the store's ok", run)
        _wait_for(lambda: (_metric(port, "mdp_ticks_total") or 0) > (ticks or 0), "ticks", run)
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 143, err  # stopped by SIGTERM, summary complete
    summary = json.loads(out)
    store = summary["feedback"]["coordinators"]["store-real"]
    assert store["level"] == "ok"
    provider = summary["feedback"]["providers"]["synthetic"]
    assert provider["seconds_at_level"]["hard"] > 0
    assert provider["scale"] == 1.0
    assert summary["reconciled"] is True
    assert raw.exists(f"{key}.dlq") == 0, raw.xrange(f"{key}.dlq")
    # redis-py types the reply as possibly awaitable; a synchronous client's is a list.
    stream = cast(list[tuple[bytes, dict[bytes, bytes]]], raw.xrange(key))
    entries = [json.loads(fields[b"data"]) for _, fields in stream]
    raw.close()
    stores = [e for e in entries if e["key"] == "store-real"]
    assert len(stores) == 2  # hard and ok, as the store laid them out: an envelope in an envelope
    assert {e["meta"]["schema_id"] for e in stores} == {"events.envelope.EventEnvelope"}
    assert {e["payload"]["meta"]["schema_id"] for e in stores} == {"telemetry.FeedbackEvent"}
