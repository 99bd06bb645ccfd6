"""Poison entries: every one lands in the DLQ with its data and a reason; nothing else changes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

import pytest
import redis
from feedback_helpers import feedback
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.typing import EncodableT, FieldT

from market_data_pipeline.bus.pulse import decode_event, encode_event
from market_data_pipeline.bus.redis_streams import RedisStreamBus
from market_data_pipeline.errors import BusError
from market_data_pipeline.flow.feedback import FeedbackHandler
from market_data_pipeline.flow.rate_gate import RateGate

pytestmark = pytest.mark.redis

MakeBus = Callable[..., RedisStreamBus]

# redis-py types every reply as possibly awaitable (its sync and async clients share the command
# methods); these give a synchronous client's replies their real types.
Entry = tuple[bytes, dict[bytes, bytes]]


def add_entry(raw: redis.Redis, key: str, fields: dict[bytes, bytes]) -> str:
    """XADD ``fields`` to ``key``; return the new entry id."""
    body: dict[FieldT, EncodableT] = {name: value for name, value in fields.items()}
    return cast(bytes, raw.xadd(key, body)).decode()


def read_entries(raw: redis.Redis, key: str) -> list[Entry]:
    """XRANGE ``key``, every entry."""
    return cast(list[Entry], raw.xrange(key))


def pending_count(raw: redis.Redis, bus: RedisStreamBus) -> int:
    """Entries of ``bus``'s group awaiting their ack."""
    return int(cast(dict[str, Any], raw.xpending(bus.key, bus.group))["pending"])


def valid_body(coordinator: str = "store-1") -> dict[str, Any]:
    good = feedback(coordinator, "ok", time.time(), size=1, capacity=10)
    return dict(json.loads(encode_event(good)))


def with_payload(**changes: Any) -> bytes:
    body = valid_body()
    body["payload"].update(changes)
    return json.dumps(body).encode()


def without(section: str, field: str) -> bytes:
    body = valid_body()
    (body if section == "envelope" else body[section]).pop(field)
    return json.dumps(body).encode()


def with_meta(**changes: Any) -> bytes:
    body = valid_body()
    body["meta"].update(changes)
    return json.dumps(body).encode()


bad_levels = st.text(max_size=10).filter(lambda s: s not in ("ok", "soft", "hard"))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
poison_data = st.one_of(
    st.binary(max_size=64),
    json_values.map(lambda v: json.dumps(v).encode()),
    bad_levels.map(lambda lv: with_payload(level=lv)),
    st.integers(max_value=0).map(lambda c: with_payload(capacity=c)),
    st.integers(max_value=-1).map(lambda q: with_payload(queue_size=q)),
    st.sampled_from([float("nan"), float("inf")]).map(lambda t: with_payload(ts=t)),
    st.sampled_from(["coordinator_id", "queue_size", "capacity", "level", "ts"]).map(
        lambda f: without("payload", f)
    ),
    st.sampled_from(["meta", "payload", "ts"]).map(lambda f: without("envelope", f)),
    st.text(max_size=30)
    .filter(lambda s: "FeedbackEvent" not in s)
    .map(lambda s: with_meta(schema_id=s)),
    st.sampled_from(["v3", "", None]).map(lambda t: with_meta(track=t)),
)
# An entry is either a data field with poison, or fields without any "data".
poison_entries = st.one_of(
    poison_data.map(lambda d: {b"data": d}),
    st.dictionaries(
        st.binary(min_size=1, max_size=8).filter(lambda k: k != b"data"),
        st.binary(max_size=16),
        min_size=1,
        max_size=3,
    ),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(entries=st.lists(poison_entries, min_size=1, max_size=5))
async def test_poison_goes_to_the_dlq_and_the_consumer_keeps_going(
    make_bus: MakeBus, raw: redis.Redis, entries: list[dict[bytes, bytes]]
) -> None:
    for fields in entries:
        if b"data" in fields:  # the generator must only make entries we reject
            with pytest.raises(BusError):
                decode_event(fields[b"data"])
    bus = make_bus()
    dlq_before = cast(int, raw.xlen(bus.dlq_key))
    ids = [add_entry(raw, bus.key, fields) for fields in entries]
    marker = f"marker-{uuid.uuid4().hex}"
    await bus.publish(feedback(marker, "ok", time.time(), size=0, capacity=1))
    gate = RateGate("ibkr", None)
    handler = FeedbackHandler({"ibkr": gate})
    async with asyncio.timeout(10), contextlib.aclosing(bus.subscribe()) as events:
        async for item in events:
            assert await handler.handle(item) == "unchanged"  # ok, the gate is already at 1.0
            assert item.coordinator_id == marker
            break
    assert gate.scale == 1.0 and gate.adjustments == 0
    dead = read_entries(raw, bus.dlq_key)[dlq_before:]
    assert [d[1][b"original_id"].decode() for d in dead] == ids
    for (_, fields), original in zip(dead, entries, strict=True):
        assert fields[b"reason"]
        assert fields[b"data"] == original.get(b"data", b"")
    # Only the marker awaits its ack (earlier examples' markers belong to other consumers).
    mine = raw.xpending_range(bus.key, bus.group, "-", "+", 100, consumername=bus.consumer)
    assert len(cast(list[dict[str, Any]], mine)) == 1
    await bus.close()


async def test_dead_letters_lists_reasons(make_bus: MakeBus, raw: redis.Redis) -> None:
    bus = make_bus()
    raw.xadd(bus.key, {b"data": with_payload(level="critical")})
    raw.xadd(bus.key, {b"data": with_payload(capacity=0)})
    raw.xadd(bus.key, {b"data": b"not json"})
    await bus.publish(feedback("m", "ok", time.time(), size=0, capacity=1))
    async with asyncio.timeout(10), contextlib.aclosing(bus.subscribe()) as events:
        async for _ in events:
            break
    reasons = [d.reason for d in await bus.dead_letters()]
    assert reasons[0].startswith("not JSON")
    assert "capacity" in reasons[1]
    assert "level" in reasons[2]


async def test_an_event_from_the_future_is_dead_lettered(
    make_bus: MakeBus, raw: redis.Redis
) -> None:
    bus = make_bus()
    ahead = feedback("mdp-store", "hard", time.time() + 1e7, size=9, capacity=10)
    future_id = await bus.publish_entry(ahead)
    await bus.publish(feedback("mdp-store", "ok", time.time(), size=0, capacity=10))
    gate = RateGate("ibkr", None)
    handler = FeedbackHandler({"ibkr": gate})
    async with asyncio.timeout(10), contextlib.aclosing(bus.subscribe()) as events:
        async for item in events:
            assert item.level == "ok"
            assert await handler.handle(item) == "unchanged"
            break
    (letter,) = await bus.dead_letters()
    assert letter.original_id == future_id
    assert "from the future" in letter.reason and "tolerance" in letter.reason
    assert gate.scale == 1.0


async def test_an_oversize_entry_is_dead_lettered_unread(
    make_bus: MakeBus, raw: redis.Redis
) -> None:
    """30 entries of 5 MB raised the consumer's memory by 160 MB: now none of it is read."""
    bus = make_bus(max_entry_bytes=10_000)
    big = add_entry(raw, bus.key, {b"data": b"{" + b" " * 5_000_000 + b"}"})
    await bus.publish(feedback("after", "ok", time.time(), size=0, capacity=1))
    async with asyncio.timeout(10), contextlib.aclosing(bus.subscribe()) as events:
        async for item in events:
            assert item.coordinator_id == "after"
            break
    (letter,) = await bus.dead_letters()
    assert letter.original_id == big
    assert "5000006 bytes is over the limit of 10000 bytes" in letter.reason  # with its name
    assert letter.data == b""  # the data stayed in Redis and was dropped there
    assert pending_count(raw, bus) <= 1  # only "after" awaits its ack


async def test_the_dlq_is_capped_and_trimming_is_counted(
    make_bus: MakeBus, raw: redis.Redis
) -> None:
    from market_data_pipeline import metrics

    def trimmed() -> float:
        return metrics.REGISTRY.get_sample_value("mdp_dlq_trimmed_total") or 0.0

    bus = make_bus(dlq_maxlen=10)
    before = trimmed()
    for n in range(300):
        raw.xadd(bus.key, {b"data": f"not json {n}".encode()})
    await bus.publish(feedback("after", "ok", time.time(), size=0, capacity=1))
    async with asyncio.timeout(30), contextlib.aclosing(bus.subscribe()) as events:
        async for _ in events:
            break
    kept = cast(int, raw.xlen(bus.dlq_key))
    assert kept < 300  # approximate: Redis trims whole nodes, so a few more than 10 may stay
    assert trimmed() - before == 300 - kept
