"""The JetStream source without a server: how many messages a fetch asks for, sequences."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

pytest.importorskip("nats")

from market_data_pipeline.sources.nats import FETCH_BYTES, FIRST_FETCH, NatsSource, _sequences


class _Subscription:
    """Hands out the messages given, whatever was asked for, and records each ask."""

    def __init__(self, bodies: list[bytes]) -> None:
        self.bodies = bodies
        self.asked: list[int] = []

    async def fetch(self, batch: int, timeout: float) -> list[SimpleNamespace]:  # noqa: ASYNC109 - nats-py's signature
        self.asked.append(batch)
        return [SimpleNamespace(data=body) for body in self.bodies]


async def _asks(fetch_batch: int, body_bytes: int, fetches: int = 3) -> list[int]:
    source = NatsSource(stream="S", fetch_batch=fetch_batch)
    sub = _Subscription([b"x" * body_bytes] * 4)
    source._sub = sub
    for _ in range(fetches):
        await source._fetch(1.0)
    return sub.asked


async def test_small_messages_are_fetched_fetch_batch_at_a_time_after_a_short_first_fetch() -> None:
    assert await _asks(1_024, 40_000) == [FIRST_FETCH, 1_024, 1_024]


async def test_large_messages_are_fetched_fewer_at_a_time() -> None:
    # 400 kB messages: 1,024 of them would be 400 MB, past what nats-py holds for a subscriber.
    per_fetch = FETCH_BYTES // 400_000
    assert await _asks(1_024, 400_000) == [FIRST_FETCH, per_fetch, per_fetch]
    assert per_fetch * 400_000 <= 64 * 2**20


async def test_a_small_fetch_batch_is_kept_and_a_huge_message_still_comes_alone() -> None:
    assert await _asks(5, 40_000) == [5, 5, 5]
    assert await _asks(1_024, 100 * 2**20) == [FIRST_FETCH, 1, 1]


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
    assert (msg.metadata.sequence.stream, msg.metadata.sequence.consumer) == (4242, 17)
