"""``mdp feedback`` publish / tail / dlq against a real Redis."""

from __future__ import annotations

import json

import pytest
import redis
import typer
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
