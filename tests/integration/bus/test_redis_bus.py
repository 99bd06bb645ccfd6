"""RedisStreamBus against a real Redis: delivery, restarts, duplicates, poison, outages, Core."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from feedback_helpers import feedback

from market_data_pipeline.bus.pulse import encode_event
from market_data_pipeline.bus.redis_streams import RedisStreamBus
from market_data_pipeline.core import (
    FEEDBACK_SCHEMA_IDS,
    FeedbackEvent,
    JsonCodec,
)
from market_data_pipeline.errors import UsageError
from market_data_pipeline.flow.feedback import FeedbackHandler
from market_data_pipeline.flow.rate_gate import RateGate

pytestmark = pytest.mark.redis

MakeBus = Callable[..., RedisStreamBus]
SRC = Path(__file__).resolve().parents[3] / "src"


def event(level: str, ts: float | None = None, coordinator: str = "store-1") -> Any:
    return feedback(coordinator, level, time.time() if ts is None else ts, size=5, capacity=10)


async def collect(bus: RedisStreamBus, n: int) -> list[Any]:
    """Take ``n`` events from a fresh subscription, acknowledging each (timeout 10 s)."""
    got: list[Any] = []
    async with asyncio.timeout(10), contextlib.aclosing(bus.subscribe()) as events:
        async for item in events:
            got.append(item)
            if len(got) == n:
                break
    return got


async def until(condition: Callable[[], bool]) -> None:
    """Poll state that changes elsewhere (gates and buses offer no change signal), 15 s at most."""
    async with asyncio.timeout(15):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


# redis-py types every reply as possibly awaitable (its sync and async clients share the command
# methods); a synchronous client's replies are cast to what Redis returns.
def pending(raw: redis.Redis, bus: RedisStreamBus) -> int:
    return int(cast(dict[str, Any], raw.xpending(bus.key, bus.group))["pending"])


async def test_publish_then_consume_and_ack(make_bus: MakeBus, raw: redis.Redis) -> None:
    bus = make_bus()
    sent = [event(level, float(i)) for i, level in enumerate(["soft", "hard", "ok"])]
    for item in sent:
        await bus.publish(item)
    got = await collect(bus, 3)
    assert got == sent
    # All but the last were acked as the next one was asked for; the last one when redelivered.
    assert pending(raw, bus) == 1
    stored = cast(list[tuple[bytes, dict[bytes, bytes]]], raw.xrange(bus.key))[0][1]
    assert set(stored) == {b"data"}
    assert JsonCodec("v1").decode(stored[b"data"], FeedbackEvent).meta.schema_id == (
        "telemetry.FeedbackEvent"
    )


async def test_entries_published_before_the_group_existed_are_delivered(
    make_bus: MakeBus, raw: redis.Redis
) -> None:
    publisher = make_bus()
    await publisher.publish(event("hard", 1.0))
    assert not raw.exists(f"{publisher.key}.seen:pipeline")
    consumer = make_bus()
    assert [e.level.value for e in await collect(consumer, 1)] == ["hard"]


async def test_cross_process_publish(
    make_bus: MakeBus, redis_url: str, redis_namespace: str
) -> None:
    gate = RateGate("ibkr", None)
    handler = FeedbackHandler({"ibkr": gate})
    bus = make_bus()
    runner = asyncio.create_task(handler.run(bus))
    script = (
        "import asyncio, time\n"
        "from market_data_pipeline.bus import open_bus\n"
        "from market_data_pipeline.core import FeedbackEvent\n"
        "async def main():\n"
        f"    bus = open_bus({redis_url!r}, namespace={redis_namespace!r})\n"
        "    for level in ('soft', 'hard'):\n"
        "        await bus.publish(FeedbackEvent(coordinator_id='other-process', queue_size=9,\n"
        "            capacity=10, level=level, ts=time.time()))\n"
        "    await bus.close()\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", script, env=env)
    assert await proc.wait() == 0
    await until(lambda: gate.scale == 0.0)
    await bus.close()
    await runner
    assert handler.summary()["providers"]["ibkr"]["rate_changes"] == 2


async def test_restart_claims_entries_a_dead_consumer_left_pending(
    make_bus: MakeBus, raw: redis.Redis
) -> None:
    first = make_bus()
    for i, level in enumerate(["soft", "hard", "ok"]):
        await first.publish(event(level, float(i)))
    got = await collect(first, 1)  # handled "soft", then died before the acknowledgement
    await first.close()
    assert pending(raw, first) == 3  # "soft" yielded, the rest read in the same batch
    second = make_bus(claim_idle_ms=0)
    got += await collect(second, 3)
    assert [e.level.value for e in got] == ["soft", "soft", "hard", "ok"]  # at least once
    assert pending(raw, second) == 1  # only the one yielded last waits for its ack


async def test_same_consumer_reads_its_own_pending_entries_first(
    make_bus: MakeBus, raw: redis.Redis
) -> None:
    first = make_bus(consumer="worker-a")
    await first.publish(event("soft", 1.0))
    await collect(first, 1)
    await first.close()
    again = make_bus(consumer="worker-a")  # fresh memory, same consumer name
    await again.publish(event("hard", 2.0))
    got = await collect(again, 2)
    assert [e.level.value for e in got] == ["soft", "hard"]


async def test_duplicates_are_acked_and_skipped(make_bus: MakeBus, raw: redis.Redis) -> None:
    bus = make_bus()
    data = encode_event(event("hard", 1.0))
    await bus.publish_raw(data)
    await bus.publish_raw(data)  # a publisher re-sending the same envelope
    await bus.publish(event("ok", 2.0))
    got = await collect(bus, 2)
    assert [e.level.value for e in got] == ["hard", "ok"]
    # A restarted consumer remembers what the group handled: a third copy is skipped too.
    await bus.close()
    await make_bus().publish_raw(data)
    await make_bus().publish(event("soft", 3.0))
    later = await collect(make_bus(), 1)
    assert [e.level.value for e in later] == ["soft"]


@pytest.mark.parametrize("schema_id", sorted(FEEDBACK_SCHEMA_IDS))
async def test_envelopes_from_cores_codec_are_consumed(make_bus: MakeBus, schema_id: str) -> None:
    bus = make_bus()
    await bus.publish_raw(JsonCodec("v1").encode(schema_id, event("soft", 1.0)))
    await bus.publish_raw(JsonCodec("v2").encode(schema_id, event("hard", 2.0), key="k"))
    assert [e.level.value for e in await collect(bus, 2)] == ["soft", "hard"]


async def test_events_from_cores_own_bus_are_consumed(
    make_bus: MakeBus, redis_url: str, redis_namespace: str
) -> None:
    # Interop with Core's own publisher: this is the one place the tests reach into Core.
    from market_data_core.events import RedisStreamsBus

    core_bus = RedisStreamsBus(redis_url, namespace=redis_namespace)
    await core_bus.publish("telemetry.feedback", event("hard", 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Core calls redis' deprecated close()
        await core_bus.close()
    got = await collect(make_bus(), 1)
    assert got[0].level.value == "hard"


async def test_outage_and_restart_of_redis(
    make_bus: MakeBus, redis_server: Any, raw: redis.Redis
) -> None:
    gate = RateGate("ibkr", None)
    handler = FeedbackHandler({"ibkr": gate}, fallback="keep")
    bus = make_bus(url=redis_server.url)
    states: list[bool] = []
    bus.on_state_change(states.append)
    runner = asyncio.create_task(handler.run(bus))
    publisher = make_bus(url=redis_server.url)

    await publisher.publish(event("soft"))
    await until(lambda: gate.scale == 0.5)
    redis_server.kill()
    await until(lambda: states[-1:] == [False])
    assert gate.scale == 0.5  # fallback "keep"
    await asyncio.sleep(0.3)  # several failed reconnects while down
    redis_server.start()  # empty: no persistence, the stream and group are recreated
    await until(lambda: states[-1:] == [True])
    await publisher.publish(event("hard"))
    await until(lambda: gate.scale == 0.0)
    assert states == [True, False, True]
    assert not runner.done()
    await bus.close()
    await runner


async def test_redis_down_at_start(make_bus: MakeBus, redis_server: Any) -> None:
    redis_server.kill()
    gate = RateGate("ibkr", None)
    handler = FeedbackHandler({"ibkr": gate}, fallback="hard")
    bus = make_bus(url=redis_server.url)
    states: list[bool] = []
    bus.on_state_change(states.append)
    runner = asyncio.create_task(handler.run(bus))
    await until(lambda: gate.scale == 0.0)  # fallback "hard" while nothing can be heard
    await asyncio.sleep(0.3)  # several failed attempts, none fatal
    assert not runner.done() and not bus.connected
    redis_server.start()
    await until(lambda: bus.connected)
    await make_bus(url=redis_server.url).publish(event("ok"))
    await until(lambda: gate.scale == 1.0)
    assert states == [True]  # started disconnected: only the change to connected is reported
    await bus.close()
    await runner


async def test_close_acknowledges_what_was_handled(make_bus: MakeBus, raw: redis.Redis) -> None:
    gate = RateGate("ibkr", None)
    handler = FeedbackHandler({"ibkr": gate})
    bus = make_bus()
    runner = asyncio.create_task(handler.run(bus))
    await bus.publish(event("soft"))
    await bus.publish(event("hard"))
    await until(lambda: gate.scale == 0.0)
    await bus.close()
    await runner
    assert pending(raw, bus) == 0


async def test_old_history_does_not_pause_a_new_consumer(make_bus: MakeBus) -> None:
    await make_bus().publish(event("hard", time.time() - 3600.0))  # a run an hour ago
    gate = RateGate("ibkr", None)
    handler = FeedbackHandler({"ibkr": gate}, stale_after_s=10.0)
    bus = make_bus()  # a new group: replays the stream from the start
    runner = asyncio.create_task(handler.run(bus))
    await make_bus().publish(event("soft", coordinator="store-2"))
    await until(lambda: gate.scale == 0.5)
    assert handler.summary()["outcomes"] == {"expired": 1, "applied": 1}
    await bus.close()
    await runner


@pytest.mark.parametrize(
    "url",
    [
        "redis://:s3cret@127.0.0.1:abc/0",
        "redis://:pa/ss3cret@127.0.0.1:6379/0",
        "redis://:s3cret@[::1/0",
    ],
)
def test_a_bad_redis_url_is_one_usage_line_without_the_password(url: str) -> None:
    with pytest.raises(UsageError) as error:
        RedisStreamBus(url)
    message = str(error.value)
    assert message.startswith("bad Redis URL redis://:***@")
    assert "s3cret" not in message and "\n" not in message


@pytest.mark.parametrize("password", ["wrong-Sup3rSecretPw", None])
async def test_a_bus_that_rejects_the_login_fails_the_run_at_start(
    tmp_path: Path, password: str | None, make_redis_server: Callable[..., Any]
) -> None:
    """A wrong Redis password used to run the whole run without feedback and exit 0."""
    from market_data_pipeline.config import RunSettings
    from market_data_pipeline.runtime import execute

    server = make_redis_server("--requirepass", "right-pw")
    auth = f":{password}@" if password else ""
    url = f"redis://{auth}127.0.0.1:{server.port}/0"
    settings = RunSettings(ticks=1_000, bus=url, sink=f"sqlite:///{tmp_path / 'b.db'}")
    report = await execute(settings)
    assert report.exit_code == 2, report.error
    assert report.error is not None and "rejected the login" in report.error
    assert "Sup3rSecretPw" not in report.error
    assert not (tmp_path / "b.db").exists()


async def test_tail_starts_after_the_entries_already_there_and_reads_every_key(
    make_bus: MakeBus, redis_namespace: str
) -> None:
    bus = make_bus()
    other = make_bus(stream_key=f"{redis_namespace}:other")
    await bus.publish(event("hard", coordinator="before"))
    await other.publish(event("hard", coordinator="before"))
    entries = bus.tail(also=[other.key])
    first = asyncio.create_task(anext(entries))
    sent = 0
    while not first.done():  # publish until the tail has started and sees one
        await other.publish(event("ok", coordinator=f"after-{sent}"))
        sent += 1
        await asyncio.wait({first}, timeout=0.05)
    key, _, item = first.result()
    assert isinstance(item, FeedbackEvent)
    assert key == other.key and item.coordinator_id.startswith("after-")  # never "before"
    await bus.publish(event("soft", coordinator="mine"))
    rest: list[tuple[str, str]] = []
    while not rest or rest[-1][0] != bus.key:
        key, _, item = await anext(entries)
        assert isinstance(item, FeedbackEvent)
        rest.append((key, item.coordinator_id))
    assert rest[-1] == (bus.key, "mine")
    assert all(name.startswith("after-") for _, name in rest[:-1])
    await entries.aclose()
