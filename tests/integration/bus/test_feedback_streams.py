"""``--feedback-stream``: other stream keys, several at once, and the nested envelope a store sends.

The nested envelope is the one ``market-data-store``'s FeedbackPublisherService produces through
Core's bus (outer schema id ``events.envelope.EventEnvelope``, the FeedbackEvent envelope as its
payload); ``tests/peers/`` checks it against the real package.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, cast

import pytest
import redis
from feedback_helpers import feedback

from market_data_pipeline.bus import FanInBus, open_bus
from market_data_pipeline.bus.pulse import PoisonEntryError, decode_event, encode_event
from market_data_pipeline.bus.redis_streams import RedisStreamBus
from market_data_pipeline.errors import UsageError


def _event(level: str = "hard", coordinator: str = "store-1") -> Any:
    return feedback(coordinator, level, time.time(), size=9, capacity=10)


def _nested(event: Any, outer_id: str = "events.envelope.EventEnvelope") -> bytes:
    inner = json.loads(encode_event(event))
    inner["id"] = ""
    inner["meta"]["headers"] = {"reason": "queue full", "utilization": "0.900000"}
    outer = {
        "ts": time.time(),
        "key": event.coordinator_id,
        "meta": {"schema_id": outer_id, "track": "v1", "headers": {}, "hash": "x"},
        "payload": inner,
    }
    return json.dumps(outer).encode()


def test_a_nested_envelope_decodes_to_its_feedback_event() -> None:
    event = _event()
    assert decode_event(_nested(event)) == event


def test_nesting_deeper_than_one_level_is_poison() -> None:
    twice = json.loads(_nested(_event()))
    twice["payload"] = json.loads(_nested(_event()))
    with pytest.raises(PoisonEntryError, match="nested more than one level"):
        decode_event(json.dumps(twice).encode())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda inner: inner.pop("meta"), "nested envelope has no meta object"),
        (lambda inner: inner["meta"].update(schema_id="x.Other"), "unknown schema_id 'x.Other'"),
        (lambda inner: inner.update(ts="soon"), "nested envelope ts is not a finite number"),
        (lambda inner: inner["payload"].update(level="panic"), "invalid FeedbackEvent"),
    ],
)
def test_a_broken_inner_envelope_is_poison_with_a_reason(change: Any, reason: str) -> None:
    outer = json.loads(_nested(_event()))
    change(outer["payload"])
    with pytest.raises(PoisonEntryError, match=reason):
        decode_event(json.dumps(outer).encode())


def test_feedback_streams_need_a_redis_bus() -> None:
    with pytest.raises(UsageError, match="needs a Redis bus"):
        open_bus(None, streams=["mdp:mdp.telemetry.feedback"])


@pytest.mark.redis
def test_namespace_placeholder_and_duplicates(redis_url: str) -> None:
    one = open_bus(
        redis_url, namespace="ns1", streams=["{namespace}:{namespace}.telemetry.feedback"]
    )
    assert isinstance(one, RedisStreamBus) and one.key == "ns1:ns1.telemetry.feedback"
    same = open_bus(redis_url, namespace="ns1", streams=["a:b", "a:b"])
    assert isinstance(same, RedisStreamBus) and same.key == "a:b"
    both = open_bus(redis_url, namespace="ns1", streams=["a:b", "c:d"])
    assert isinstance(both, FanInBus)
    keys = [m.key if isinstance(m, RedisStreamBus) else None for m in both.members]
    assert keys == ["a:b", "c:d"]


async def _collect(bus: Any, into: list[Any], arrived: asyncio.Event) -> None:
    # As the feedback handler does: handle each event, ask for the next, until the bus closes.
    async for event in bus.subscribe():
        into.append(event)
        arrived.set()


async def _until(count: int, got: list[Any], arrived: asyncio.Event) -> None:
    async with asyncio.timeout(20):
        while True:
            arrived.clear()
            if len(got) >= count:
                return
            await arrived.wait()


@pytest.mark.redis
async def test_one_run_obeys_several_streams_and_acks_what_it_handled(
    redis_url: str, redis_namespace: str
) -> None:
    store_key = f"{redis_namespace}:{redis_namespace}.telemetry.feedback"
    own_key = f"{redis_namespace}:telemetry.feedback"
    raw = redis.Redis.from_url(redis_url)
    raw.xadd(store_key, {"data": _nested(_event("hard", "store-a"))})
    raw.xadd(own_key, {"data": encode_event(_event("soft", "store-b"))})
    bus = open_bus(
        redis_url,
        namespace=redis_namespace,
        streams=["{namespace}:{namespace}.telemetry.feedback", "{namespace}:telemetry.feedback"],
        block_ms=50,
    )
    got: list[Any] = []
    arrived = asyncio.Event()
    consumer = asyncio.create_task(_collect(bus, got, arrived))
    try:
        await _until(2, got, arrived)
        assert sorted(e.coordinator_id for e in got) == ["store-a", "store-b"]
        await bus.publish(_event("ok", "mine"))  # goes to the first key
        await _until(3, got, arrived)
        assert raw.xlen(store_key) == 2 and raw.xlen(own_key) == 1
    finally:
        await bus.close()
        await asyncio.wait_for(consumer, timeout=20)
    for key in (store_key, own_key):
        # redis-py types the reply as possibly awaitable; a synchronous client's is a dict.
        assert cast(dict[str, Any], raw.xpending(key, "pipeline"))["pending"] == 0, key
    raw.close()


def test_feedback_streams_come_from_flags_variables_and_the_config_file(tmp_path: Any) -> None:
    from market_data_pipeline.config import load_settings

    conf = tmp_path / "run.toml"
    conf.write_text('feedback_stream = ["file:one"]\n', encoding="utf-8")
    assert load_settings(config_file=conf, environ={}, flags={}).feedback_stream == ("file:one",)
    env = {"MDP_FEEDBACK_STREAM": "a:b, c:d"}
    assert load_settings(config_file=conf, environ=env, flags={}).feedback_stream == ("a:b", "c:d")
    flags = {"feedback_stream": ("x:y",)}
    assert load_settings(config_file=conf, environ=env, flags=flags).feedback_stream == ("x:y",)
