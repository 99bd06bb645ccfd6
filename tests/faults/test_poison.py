"""1,000 fuzzed poison entries on a private Redis: each is dead-lettered with its data and a
reason, nothing stays pending, and the consumer still delivers the valid event behind them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
import uuid
from typing import Any, cast

import pytest
import redis
from feedback_helpers import feedback
from redis.typing import EncodableT, FieldT
from redis_server import RedisServer

from market_data_pipeline.bus.pulse import (
    PoisonEntryError,
    decode_event,
    encode_event,
    refuse_future,
)
from market_data_pipeline.bus.redis_streams import RedisStreamBus
from market_data_pipeline.flow.feedback import DEFAULT_CLOCK_SKEW_S

from .conftest import Scenario

pytestmark = pytest.mark.faults
ENTRIES = 1_000


def _valid(rng: random.Random) -> dict[str, Any]:
    event = feedback(f"c{rng.randrange(5)}", "ok", time.time(), size=1, capacity=2)
    return dict(json.loads(encode_event(event)))


def _junk(rng: random.Random) -> Any:
    return rng.choice(
        [None, True, -1, 0, 1e308, float("inf"), "", "x" * rng.randrange(100), [1, [2]], {"a": {}}]
    )


def _mutate(body: dict[str, Any], rng: random.Random) -> bytes:
    section = rng.choice(["envelope", "meta", "payload"])
    target = body if section == "envelope" else body[section]
    key = rng.choice([*target, "extra"])
    if rng.random() < 0.3:
        target.pop(key, None)
    else:
        target[key] = _junk(rng)
    return json.dumps(body, allow_nan=True).encode()


def _poison(rng: random.Random) -> dict[bytes, bytes]:
    kind = rng.randrange(6)
    if kind == 0:
        return {b"data": rng.randbytes(rng.randrange(1, 300))}
    if kind == 1:
        return {rng.randbytes(4): rng.randbytes(8)}  # no data field
    if kind == 2:
        body = _valid(rng)
        body["payload"]["ts"] = time.time() + rng.uniform(60, 1e9)  # from the future
        return {b"data": json.dumps(body).encode()}
    if kind == 3:
        return {b"data": json.dumps(_junk(rng)).encode()}
    if kind == 4:
        return {b"data": encode_event_text(rng)[: rng.randrange(1, 60)]}  # truncated
    return {b"data": _mutate(_valid(rng), rng)}


def encode_event_text(rng: random.Random) -> bytes:
    return json.dumps(_valid(rng)).encode()


# redis-py types every reply as possibly awaitable (its sync and async clients share the command
# methods); a synchronous client's replies are cast to what Redis returns.
def _add_entry(raw: redis.Redis, key: str, fields: dict[bytes, bytes]) -> str:
    """XADD ``fields`` to ``key``; return the new entry id."""
    body: dict[FieldT, EncodableT] = {name: value for name, value in fields.items()}
    return cast(bytes, raw.xadd(key, body)).decode()


def _is_poison(fields: dict[bytes, bytes]) -> bool:
    data = fields.get(b"data")
    if data is None:
        return True
    try:
        refuse_future(decode_event(data), time.time(), DEFAULT_CLOCK_SKEW_S)
    except PoisonEntryError:
        return True
    return False


async def test_poison_fuzz_1000_entries(scenario: Scenario, private_redis: RedisServer) -> None:
    rng = random.Random(1000)
    entries: list[dict[bytes, bytes]] = []
    while len(entries) < ENTRIES:
        fields = _poison(rng)
        if _is_poison(fields):  # a mutation may by chance leave a valid event: not poison
            entries.append(fields)
    namespace = f"faults-{uuid.uuid4().hex[:8]}"
    bus = RedisStreamBus(private_redis.url, namespace=namespace, block_ms=100)
    raw = redis.Redis.from_url(private_redis.url)
    try:
        ids = [_add_entry(raw, bus.key, fields) for fields in entries]
        marker = feedback("marker", "ok", time.time(), size=0, capacity=1)
        marker_id = await bus.publish_entry(marker)
        async with asyncio.timeout(60), contextlib.aclosing(bus.subscribe()) as events:
            async for event in events:
                assert event.coordinator_id == "marker"
                break
        await bus.close()
        letters = cast(list[tuple[bytes, dict[bytes, bytes]]], raw.xrange(bus.dlq_key))
        dead = {fields[b"original_id"].decode(): fields for _, fields in letters}
        for entry_id, fields in zip(ids, entries, strict=True):
            letter = dead.get(entry_id)
            held = (
                letter is not None
                and bool(letter[b"reason"])
                and letter[b"data"] == fields.get(b"data", b"")
            )
            scenario.record(held, f"entry {entry_id} not dead-lettered with its data")
        # The marker waits for its ack (the caller stopped before asking for the next entry).
        pending = cast(
            list[dict[str, Any]], raw.xpending_range(bus.key, bus.group, "-", "+", 2_000)
        )
        left = [p["message_id"].decode() for p in pending if p["message_id"].decode() != marker_id]
        scenario.record(not left, f"{len(left)} poison entries left pending")
    finally:
        await bus.close()
        raw.close()
    assert scenario.held == scenario.tried, scenario.notes[:5]
