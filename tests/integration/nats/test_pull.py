"""The consumer's own pull requests (``Puller``) against the real server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import nats
import nats.js.api as api
import pytest

from market_data_pipeline.sources.nats.pull import Puller


async def _stream_with(nc: Any, stream: str, messages: int) -> None:
    js = nc.jetstream()
    await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
    for n in range(messages):
        await js.publish(f"{stream.lower()}.x", str(n).encode())
    await js.add_consumer(
        stream, api.ConsumerConfig(durable_name="p", ack_policy=api.AckPolicy.ALL)
    )


@pytest.fixture
async def connection(nats_url: str) -> AsyncIterator[Any]:
    nc = await nats.connect(nats_url)
    yield nc
    await nc.close()


async def _puller(nc: Any, stream: str) -> Puller:
    puller = Puller(nc, stream, "p")
    await puller.start()
    return puller


async def test_a_fetch_takes_the_batch_in_stream_order_and_the_next_one_the_rest(
    connection: Any, stream_name: str
) -> None:
    await _stream_with(connection, stream_name, 25)
    puller = await _puller(connection, stream_name)
    first = await puller.fetch(10, timeout=5)
    rest = await puller.fetch(100, timeout=5)
    assert [m.data for m in first] == [str(n).encode() for n in range(10)]
    assert [m.data for m in rest] == [str(n).encode() for n in range(10, 25)]


async def test_a_fetch_at_the_end_of_the_stream_returns_what_there_is_without_waiting(
    connection: Any, stream_name: str
) -> None:
    await _stream_with(connection, stream_name, 3)
    puller = await _puller(connection, stream_name)
    started = time.monotonic()
    got = await puller.fetch(100, timeout=30)
    assert len(got) == 3
    assert time.monotonic() - started < 25  # the no-wait request answered: no 30 s wait


async def test_a_fetch_of_an_empty_stream_returns_nothing_after_its_timeout(
    connection: Any, stream_name: str
) -> None:
    await _stream_with(connection, stream_name, 0)
    puller = await _puller(connection, stream_name)
    started = time.monotonic()
    assert await puller.fetch(10, timeout=0.3) == []
    # It waited (the server's 408 may end the wait a fraction of a millisecond early).
    assert time.monotonic() - started >= 0.25


async def test_a_waiting_fetch_returns_the_first_message_as_it_comes_not_a_whole_batch(
    connection: Any, stream_name: str
) -> None:
    # At the head of a live stream, waiting for 100 messages would hold the first one until
    # 99 more were published or the timeout passed.
    await _stream_with(connection, stream_name, 0)
    puller = await _puller(connection, stream_name)
    waiting = asyncio.ensure_future(puller.fetch(100, timeout=30))
    await asyncio.sleep(0)  # the fetch asks first
    await connection.jetstream().publish(f"{stream_name.lower()}.x", b"late")
    got = await asyncio.wait_for(waiting, 25)
    assert [m.data for m in got] == [b"late"]


async def test_messages_that_come_after_a_fetch_gave_up_are_kept_for_the_next_one(
    connection: Any, stream_name: str
) -> None:
    await _stream_with(connection, stream_name, 0)
    puller = await _puller(connection, stream_name)
    # The waiting request outlives this fetch (its expiry is the fetch's timeout, but the
    # fetch is cut short here): the message it then delivers must not be lost.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(puller.fetch(5, timeout=10), 0.2)
    await connection.jetstream().publish(f"{stream_name.lower()}.x", b"kept")
    got = await puller.fetch(5, timeout=5)
    assert [m.data for m in got] == [b"kept"]


async def test_acknowledging_the_last_message_acknowledges_the_batch(
    connection: Any, stream_name: str
) -> None:
    await _stream_with(connection, stream_name, 5)
    puller = await _puller(connection, stream_name)
    got = await puller.fetch(5, timeout=5)
    await got[-1].ack()
    # The server applies an ack on its own time: wait until the floor moves (or give up).
    floor, deadline = 0, time.monotonic() + 10
    while floor < 5 and time.monotonic() < deadline:
        info = await connection.jetstream().consumer_info(stream_name, "p")
        floor = info.ack_floor.stream_seq
    assert floor == 5
