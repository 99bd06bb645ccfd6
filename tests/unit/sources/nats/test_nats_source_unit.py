"""The JetStream source without a server: how many messages a fetch asks for, sequences."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("nats")

from market_data_pipeline.errors import BusError
from market_data_pipeline.sources.nats.source import (
    FETCH_BYTES,
    FIRST_FETCH,
    SWEEP_S,
    NatsSource,
    _pending,
    _sequences,
)


class _Subscription:
    """Hands out as many messages as asked for (a consumer behind its stream), or the next of
    ``backlog`` counts when given, and records each ask and its wait."""

    def __init__(self, body: bytes, backlog: list[int] | None = None) -> None:
        self.body = body
        self.backlog = backlog
        self.asked: list[int] = []
        self.waits: list[float] = []

    async def fetch(self, batch: int, timeout: float) -> list[SimpleNamespace]:  # noqa: ASYNC109 - nats-py's signature
        self.asked.append(batch)
        self.waits.append(timeout)
        count = batch if self.backlog is None else min(batch, self.backlog.pop(0))
        return [SimpleNamespace(data=self.body)] * count


async def _asks(fetch_batch: int, body_bytes: int, fetches: int = 3) -> list[int]:
    source = NatsSource(stream="S", fetch_batch=fetch_batch)
    sub = _Subscription(b"x" * body_bytes)
    source._sub = sub
    for _ in range(fetches):
        await source._fetch(1.0)
    return sub.asked


async def test_small_messages_are_fetched_fetch_batch_at_a_time_after_a_short_first_fetch() -> None:
    assert await _asks(1_024, 10_000) == [FIRST_FETCH, 1_024, 1_024]


async def test_large_messages_are_fetched_fewer_at_a_time() -> None:
    # 400 kB messages: 1,024 of them would be 400 MB, past what the server lets wait for a
    # client (max_pending, 64 MiB) and what nats-py holds for a subscriber (256 MiB).
    per_fetch = FETCH_BYTES // 400_000
    assert await _asks(1_024, 400_000) == [FIRST_FETCH, per_fetch, per_fetch]
    assert 3 * per_fetch * 400_000 <= 64 * 2**20  # three requests in flight stay below both


async def test_a_small_fetch_batch_is_kept_and_a_huge_message_still_comes_alone() -> None:
    assert await _asks(5, 40_000) == [5, 5, 5]
    assert await _asks(1_024, 100 * 2**20) == [FIRST_FETCH, 1, 1]


async def test_at_the_head_of_the_stream_a_fetch_sweeps_or_waits_for_one_message() -> None:
    # A full fetch, a short one (the head of the stream), sweeps while they find messages, a
    # wait for one message after one found none, the wait that times out and the one that gets
    # it, then a full sweep (behind again) and a full fetch.
    source = NatsSource(stream="S", fetch_batch=100)
    sub = _Subscription(b"x" * 40, backlog=[64, 3, 5, 0, 0, 1, 100, 100])
    source._sub = sub
    caught_up = []
    for _ in range(8):
        await source._fetch(1.0)
        caught_up.append(source.caught_up)
    assert sub.asked == [FIRST_FETCH, 100, 100, 100, 1, 1, 100, 100]
    assert sub.waits == [1.0, 1.0, SWEEP_S, SWEEP_S, 1.0, 1.0, SWEEP_S, 1.0]
    assert caught_up == [False, True, True, True, True, True, False, False]


async def test_a_short_fetch_with_more_pending_behind_it_is_not_caught_up() -> None:
    source = NatsSource(stream="S", fetch_batch=100)
    behind = "$JS.ACK.S.mdp.1.7.7.1733468400000000000.{}"
    replies = iter([behind.format(500), behind.format(2)])

    class _Pending(_Subscription):
        async def fetch(self, batch: int, timeout: float) -> list[SimpleNamespace]:  # noqa: ASYNC109 - nats-py's signature
            return [SimpleNamespace(data=b"x", reply=next(replies))] * 3

    source._sub = _Pending(b"x")
    source._live = True
    await source._fetch(1.0)
    assert not source.caught_up  # 500 more behind the 3 taken: a backlog
    await source._fetch(1.0)
    assert source.caught_up


async def test_a_fetch_that_times_out_before_a_backlog_does_not_start_sweeping() -> None:
    # A slow machine: the fetch ends at its timeout with 40 of 100 messages and 5,000 behind
    # them. Sweeping (a request every 5 ms, each for a whole batch) would pile up requests until
    # the server cut the client off; the next fetch is a full one, with the full wait.
    source = NatsSource(stream="S", fetch_batch=100)
    reply = "$JS.ACK.S.mdp.1.7.7.1733468400000000000.5000"

    class _Slow(_Subscription):
        async def fetch(self, batch: int, timeout: float) -> list[SimpleNamespace]:  # noqa: ASYNC109 - nats-py's signature
            self.asked.append(batch)
            self.waits.append(timeout)
            return [SimpleNamespace(data=b"x" * 40, reply=reply)] * min(batch, 40)

    sub = _Slow(b"x")
    source._sub = sub
    for _ in range(3):
        await source._fetch(1.0)
    assert sub.asked == [FIRST_FETCH, 100, 100]
    assert sub.waits == [1.0, 1.0, 1.0]
    assert not source.caught_up


@pytest.mark.parametrize(
    "reply",
    [
        "$JS.ACK.TICKS.mdp.1.4242.17.1733468400000000000.9",
        "$JS.ACK.hub.ACCHASH.TICKS.mdp.1.4242.17.1733468400000000000.9.rnd",
        "$JS.ACK._.ACCHASH.TICKS.mdp.1.4242.17.1733468400000000000.9",
    ],
)
def test_sequences_come_from_the_ack_subject_as_nats_py_reads_them(reply: str) -> None:
    from nats.aio.msg import Msg

    msg = Msg(_client=None, subject="ticks.A", reply=reply)  # type: ignore[arg-type]
    assert _sequences(msg) == (4242, 17)
    assert _pending(msg) == 9
    assert (msg.metadata.sequence.stream, msg.metadata.sequence.consumer) == (4242, 17)


_TICK = b'{"symbol": "A", "price": 1.5, "size": 1, "ts": 1704186000000}'


def _message(seq: int, data: bytes = _TICK, headers: dict[str, str] | None = None) -> Any:
    return SimpleNamespace(
        data=data, subject="t.A", headers=headers, reply=f"$JS.ACK.S.d.1.{seq}.{seq}.0.0"
    )


class _LosesCancellation:
    """A subscription whose fetch, once the first batch is out, waits and loses a cancellation
    (as a client call built on ``asyncio.wait_for`` can in Python 3.11), then hands messages."""

    def __init__(self) -> None:
        self.calls = 0
        self.waiting = asyncio.Event()  # set once the reader is in the fetch that loses it

    async def fetch(self, batch: int, timeout: float) -> list[Any]:  # noqa: ASYNC109 - nats-py's signature
        self.calls += 1
        if self.calls > 1:
            self.waiting.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()
        return [_message(self.calls)]


async def _reading(monkeypatch: pytest.MonkeyPatch) -> tuple[NatsSource, _LosesCancellation]:
    source = NatsSource(stream="S")
    sub = _LosesCancellation()
    source._sub = sub

    async def connected() -> None:
        return None

    monkeypatch.setattr(source, "_connect", connected)
    return source, sub


async def test_a_cancelled_consumer_ends_though_the_client_loses_the_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, sub = await _reading(monkeypatch)
    batches = source.batches()
    assert (await anext(batches)).height == 1
    waiting = asyncio.ensure_future(anext(batches))
    await sub.waiting.wait()
    waiting.cancel()
    done, _ = await asyncio.wait({waiting}, timeout=30)
    assert done == {waiting} and waiting.cancelled()
    assert source._reader is None
    await source.close()


async def test_close_from_elsewhere_ends_the_stream_though_the_client_loses_the_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source, sub = await _reading(monkeypatch)
    batches = source.batches()
    assert (await anext(batches)).height == 1
    waiting = asyncio.ensure_future(anext(batches))
    await sub.waiting.wait()
    closing = asyncio.ensure_future(source.close())
    done, _ = await asyncio.wait({waiting, closing}, timeout=30)
    assert done == {waiting, closing}
    with pytest.raises(StopAsyncIteration):
        waiting.result()


class _Publisher:
    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.published: list[tuple[str, bytes, dict[str, str]]] = []

    async def publish(
        self,
        subject: str,
        payload: bytes,
        headers: dict[str, str],
        timeout: float,  # noqa: ASYNC109 - nats-py's signature
    ) -> None:
        if self.error is not None:
            raise self.error
        self.published.append((subject, payload, headers))


async def test_a_dead_letter_that_cannot_be_written_leaves_position_and_acks_before_it() -> None:
    source = NatsSource(stream="S")
    source._js = _Publisher(TimeoutError())
    batch = [(1, _message(1)), (2, _message(2, b"junk")), (3, _message(3))]
    with pytest.raises(BusError, match=r"cannot dead-letter message 2 .* TimeoutError"):
        await source._take(source._fetched(batch))
    assert (source.position, source._unacked, source.messages) == (0, [], 0)
    assert source.bad_rows == 0


async def test_a_dead_letter_keeps_the_original_headers_without_letting_the_server_act() -> None:
    source = NatsSource(stream="S")
    publisher = _Publisher(None)
    source._js = publisher
    headers = {"Trace-Id": "t1", "Nats-Expected-Last-Sequence": "4"}
    batch = [(7, _message(7, b"junk", headers)), (8, _message(8))]
    frame = await source._take(source._fetched(batch))
    assert frame.height == 1 and source.position == 8 and source.dead_letters == 1
    [(subject, payload, sent)] = publisher.published
    assert (subject, payload) == ("mdp.dlq.S", b"junk")
    assert sent["Trace-Id"] == "t1"
    assert sent["Mdp-Dlq-Original-Nats-Expected-Last-Sequence"] == "4"
    assert "Nats-Expected-Last-Sequence" not in sent
    assert sent["Mdp-Dlq-Stream-Seq"] == "7" and sent["Nats-Msg-Id"] == "S:7"


async def test_a_dead_letter_past_the_servers_max_payload_says_so_instead_of_timing_out() -> None:
    source = NatsSource(stream="S")
    publisher = _Publisher(None)
    source._js, source._nc = publisher, SimpleNamespace(max_payload=1_000)
    with pytest.raises(BusError, match=r"past the server's max_payload of 1,000: raise"):
        await source._take(source._fetched([(3, _message(3, b"{" * 990))]))
    assert publisher.published == [] and source.position == 0
