"""``mdp feedback`` publish / tail / dlq against a real Redis."""

from __future__ import annotations

import json

import pytest
import redis
import typer
from feedback_helpers import feedback
from typer.testing import CliRunner

from market_data_pipeline.cli.feedback import feedback_app

pytestmark = pytest.mark.redis

app = typer.Typer()
app.add_typer(feedback_app)
runner = CliRunner()


def mdp(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["feedback", *args], env=env)
    return result.exit_code, result.output


def test_publish_then_tail_as_json(redis_url: str, redis_namespace: str) -> None:
    common = ["--namespace", redis_namespace]
    code, out = mdp(
        "publish",
        "--level",
        "hard",
        "--coordinator",
        "store-1",
        *common,
        env={"MDP_BUS": redis_url},
    )
    assert code == 0, out
    code, out = mdp("tail", "--bus", redis_url, *common, "--from-start", "--count", "1", "--json")
    assert code == 0, out
    record = json.loads(out.strip().splitlines()[-1])
    assert (record["level"], record["coordinator_id"]) == ("hard", "store-1")
    assert (record["queue_size"], record["capacity"]) == (900, 1000)


def test_dlq_lists_reasons(redis_url: str, redis_namespace: str) -> None:
    client = redis.Redis.from_url(redis_url)
    key = f"{redis_namespace}:telemetry.feedback.dlq"
    client.xadd(
        key,
        {
            "original_id": "1-0",
            "reason": "not JSON: x",
            "data": b"garbage",
            "group": "pipeline",
            "ts": "1700000000.0",
        },
    )
    client.close()
    code, out = mdp("dlq", "--bus", redis_url, "--namespace", redis_namespace, "--json")
    assert code == 0, out
    record = json.loads(out.strip().splitlines()[-1])
    assert (record["reason"], record["data"], record["original_id"]) == (
        "not JSON: x",
        "garbage",
        "1-0",
    )
    code, out = mdp("dlq", "--bus", redis_url, "--namespace", redis_namespace)
    assert code == 0 and "not JSON" in out


def test_memory_bus_is_refused() -> None:
    code, out = mdp("publish", "--level", "ok", "--bus", "memory://")
    assert code == 2
    assert "need a Redis bus" in out


def test_password_never_printed() -> None:
    code, out = mdp("publish", "--level", "ok", "--bus", "redis://:hunter2@127.0.0.1:1/0")
    assert code == 1
    assert "hunter2" not in out and "***" in out


def test_tail_and_dlq_print_entries_literally(redis_url: str, redis_namespace: str) -> None:
    import os
    import time

    from market_data_pipeline.bus.pulse import encode_event

    client = redis.Redis.from_url(redis_url)
    key = f"{redis_namespace}:telemetry.feedback"
    evil = feedback("[bold]evil[/bold] x", "ok", time.time(), size=1, capacity=2)
    client.xadd(key, {"data": encode_event(evil)})
    body = json.loads(encode_event(evil))
    body["meta"]["schema_id"] = "[/x]"
    client.xadd(key, {"data": json.dumps(body)})
    for _ in range(3):
        client.xadd(f"{key}.dlq", {"reason": "[/x]", "data": os.urandom(200_000), "ts": "1e300"})
    common = ["--bus", redis_url, "--namespace", redis_namespace, "--from-start", "--count", "2"]
    code, out = mdp("tail", *common, "--json")
    assert code == 0, out
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert lines[0]["coordinator_id"] == "[bold]evil[/bold] x"
    assert "'[/x]'" in lines[1]["error"]
    code, out = mdp("tail", *common)
    assert code == 0, out
    assert "[bold]evil[/bold] x" in out and "'[/x]'" in out
    code, out = mdp("dlq", "--bus", redis_url, "--namespace", redis_namespace, "--json")
    assert code == 0, out
    assert [json.loads(line)["reason"] for line in out.strip().splitlines()] == ["[/x]"] * 3
    code, out = mdp("dlq", "--bus", redis_url, "--namespace", redis_namespace)
    assert code == 0, out
    assert "[/x]" in out
    client.close()
