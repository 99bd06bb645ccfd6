"""``mdp feedback`` through the whole CLI against a real Redis: short flags and stream keys."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from .conftest import Mdp

pytestmark = pytest.mark.redis


def _lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.strip().splitlines()]


def test_short_flags_publish_and_read_back(mdp: Mdp, redis_url: str, redis_namespace: str) -> None:
    common = ["-b", redis_url, "--namespace", redis_namespace]
    published = mdp("feedback", "publish", *common, "-l", "soft", "-I", "store-7")
    assert published.exit_code == 0, published.output
    assert f"to {redis_namespace}:telemetry.feedback" in published.stdout
    tailed = mdp("feedback", "tail", *common, "--from-start", "-n", "1", "-j")
    assert tailed.exit_code == 0, tailed.output
    [record] = _lines(tailed.stdout)
    assert (record["level"], record["coordinator_id"], record["queue_size"]) == (
        "soft",
        "store-7",
        700,
    )
    client = redis.Redis.from_url(redis_url)
    dlq = f"{redis_namespace}:telemetry.feedback.dlq"
    for n in range(3):
        client.xadd(dlq, {"original_id": f"{n}-0", "reason": f"bad {n}", "data": b"x", "ts": "1"})
    client.close()
    listed = mdp("feedback", "dlq", *common, "-n", "2", "-j")
    assert listed.exit_code == 0, listed.output
    assert [r["reason"] for r in _lines(listed.stdout)] == ["bad 2", "bad 1"]


def test_feedback_stream_publish_writes_to_the_first_key(
    mdp: Mdp, redis_url: str, redis_namespace: str
) -> None:
    common = ["-b", redis_url, "--namespace", redis_namespace]
    first, second = "{namespace}:store.feedback", f"{redis_namespace}:other.feedback"
    streams = ["--feedback-stream", first, "--feedback-stream", second]
    result = mdp("feedback", "publish", *common, *streams, "-l", "hard", "-I", "store-1")
    assert result.exit_code == 0, result.output
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.xlen(f"{redis_namespace}:store.feedback") == 1
        assert client.xlen(second) == 0
        assert client.xlen(f"{redis_namespace}:telemetry.feedback") == 0
    finally:
        client.close()


def test_feedback_stream_tail_reads_every_key_given(
    mdp: Mdp, redis_url: str, redis_namespace: str
) -> None:
    common = ["-b", redis_url, "--namespace", redis_namespace]
    keys = {name: f"{redis_namespace}:{name}.feedback" for name in ("a", "b", "c")}
    for name, key in keys.items():
        sent = mdp("feedback", "publish", *common, "--feedback-stream", key, "-l", "ok", "-I", name)
        assert sent.exit_code == 0, sent.output
    streams = ["--feedback-stream", keys["a"], "--feedback-stream", "{namespace}:b.feedback"]
    tailed = mdp("feedback", "tail", *common, *streams, "--from-start", "-n", "2", "-j")
    assert tailed.exit_code == 0, tailed.output
    seen = {(r["stream"], r["coordinator_id"]) for r in _lines(tailed.stdout)}
    assert seen == {(keys["a"], "a"), (keys["b"], "b")}
    text = mdp("feedback", "tail", *common, *streams, "--from-start", "-n", "2")
    assert text.exit_code == 0, text.output
    assert keys["a"] in text.stdout and keys["b"] in text.stdout and keys["c"] not in text.stdout


def test_feedback_stream_from_the_environment_as_mdp_run_reads_it(
    mdp: Mdp, redis_url: str, redis_namespace: str
) -> None:
    key = f"{redis_namespace}:env.feedback"
    env = {"MDP_BUS": redis_url, "MDP_FEEDBACK_STREAM": f" {key} ,{{namespace}}:x"}
    sent = mdp("feedback", "publish", "--namespace", redis_namespace, "-l", "ok", env=env)
    assert sent.exit_code == 0 and key in sent.stdout, sent.output
    tailed = mdp(
        "feedback", "tail", "--namespace", redis_namespace, "--from-start", "-n", "1", "-j", env=env
    )
    assert tailed.exit_code == 0, tailed.output
    assert _lines(tailed.stdout)[0]["stream"] == key


def test_feedback_stream_dlq_merges_the_keys_newest_first(
    mdp: Mdp, redis_url: str, redis_namespace: str
) -> None:
    keys = [f"{redis_namespace}:a.feedback", f"{redis_namespace}:b.feedback"]
    client = redis.Redis.from_url(redis_url)
    for n, key in enumerate([keys[0], keys[1], keys[0]]):  # ids 1000-0, 2000-0, 3000-0: in order
        client.xadd(
            f"{key}.dlq",
            {"original_id": "1-0", "reason": f"r{n}", "data": b"x"},
            id=f"{1000 * (n + 1)}-0",
        )
    client.close()
    common = ["-b", redis_url, "--namespace", redis_namespace]
    streams = ["--feedback-stream", keys[0], "--feedback-stream", keys[1]]
    listed = mdp("feedback", "dlq", *common, *streams, "-j")
    assert listed.exit_code == 0, listed.output
    rows = [(r["stream"], r["reason"]) for r in _lines(listed.stdout)]
    assert rows == [(f"{keys[0]}.dlq", "r2"), (f"{keys[1]}.dlq", "r1"), (f"{keys[0]}.dlq", "r0")]
    table = mdp("feedback", "dlq", *common, *streams, "-n", "1")
    assert table.exit_code == 0, table.output
    assert "r2" in table.stdout and "r1" not in table.stdout
    only_b = mdp("feedback", "dlq", *common, "--feedback-stream", keys[1], "-j")
    assert [r["reason"] for r in _lines(only_b.stdout)] == ["r1"]


def test_an_empty_stream_key_is_a_usage_error(mdp: Mdp, redis_url: str) -> None:
    result = mdp("feedback", "tail", "-b", redis_url, "--feedback-stream", " ")
    assert result.exit_code == 2
    assert "stream key cannot be empty" in result.output
