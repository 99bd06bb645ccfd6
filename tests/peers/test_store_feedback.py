"""``mdp run`` obeys the real market-data-store: its stream key, its nested envelope, its levels.

The store (0.6.73, from the package index) publishes through Core's bus with its default
settings: stream ``{MD_NAMESPACE}:{MD_NAMESPACE}.telemetry.feedback``, the FeedbackEvent inside an
envelope inside Core's envelope. The run listens there with one option, ``--feedback-stream``; the
test watches the run's own metrics and waits for each state, never for a fixed time.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import cast

import pytest
import redis
from metrics_page import metric
from ports import free_port
from waiting import wait_while_running

from .conftest import DOWNSTREAM, PeerEnv

pytestmark = pytest.mark.redis

MDP = [sys.executable, "-m", "market_data_pipeline.cli"]
STORE_KEY = "{namespace}:{namespace}.telemetry.feedback"


def _publish(peer_env: PeerEnv, redis_url: str, namespace: str, *levels: str) -> None:
    store_env = {"EVENT_BUS_BACKEND": "redis", "REDIS_URL": redis_url, "MD_NAMESPACE": namespace}
    done = peer_env.run(
        str(DOWNSTREAM / "publish_store_feedback.py"), "store-real", *levels, env=store_env
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_run_pauses_on_the_stores_hard_and_resumes_on_its_ok(
    peer_env: PeerEnv, tmp_path: Path, redis_url: str, redis_namespace: str
) -> None:
    port = free_port()
    scale = 'mdp_rate_scale{provider="synthetic"}'
    argv = [*MDP, "run", "--rate", "2000", "--duration", "120", "--resolution", "1s"]
    argv += ["--sink", f"sqlite:///{tmp_path / 'store.db'}", "--json", "--metrics-port", str(port)]
    argv += ["--bus", redis_url, "--namespace", redis_namespace, "--feedback-stream", STORE_KEY]
    argv += ["--stale-after", "600"]  # the store sends no heartbeat: only its ok may resume us
    run = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    key = STORE_KEY.format(namespace=redis_namespace)
    raw = redis.Redis.from_url(redis_url)
    try:
        wait_while_running(
            run, lambda: metric(port, scale) == 1.0, "the run to start at full rate", 60
        )
        _publish(peer_env, redis_url, redis_namespace, "hard")
        wait_while_running(
            run, lambda: metric(port, scale) == 0.0, "the pause on the store's hard", 60
        )
        ticks = metric(port, "mdp_ticks_total")
        _publish(peer_env, redis_url, redis_namespace, "ok")
        wait_while_running(
            run, lambda: metric(port, scale) == 1.0, "the resume on the store's ok", 60
        )
        wait_while_running(
            run, lambda: (metric(port, "mdp_ticks_total") or 0) > (ticks or 0), "ticks", 60
        )
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
