"""Checks for implementations of Core's ``FeedbackPublisher`` (``async publish(event) -> None``).

Fixtures a subclass supplies:

    publisher   the object under test (required)
    publish     ``async (event) -> None`` used by the delivery checks; default
                ``publisher.publish`` (override it to drive an implementation whose method has
                another name: the protocol checks still report the mismatch)
    read_back   ``async () -> list[FeedbackEvent]``: what a consumer receives, decoded the way
                this pipeline decodes it (``redis_reader`` for a Redis stream); optional
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from .checks import core_protocol, signature_problems, within

PROTOCOL = "FeedbackPublisherProtocol"
TIMEOUT_S = 10.0
FIELDS = ("coordinator_id", "queue_size", "capacity", "level", "source")


def redis_reader(url: str, key: str) -> Callable[[], Awaitable[list[Any]]]:
    """Return ``read_back`` for a Redis stream: every entry decoded as the pipeline decodes it
    (``market_data_contracts.pulse``, the decoder its feedback bus uses).

    An entry the pipeline would dead-letter fails the test with the pipeline's reason.
    """

    async def read() -> list[Any]:
        import redis.asyncio as aioredis

        from ..pulse import PoisonEnvelopeError, decode_event

        client = aioredis.Redis.from_url(url)
        try:
            entries = await client.xrange(key)
        finally:
            await client.aclose()
        events = []
        for entry_id, fields in entries:
            try:
                events.append(decode_event(fields.get(b"data", b"")))
            except PoisonEnvelopeError as exc:
                pytest.fail(f"entry {entry_id!r} of {key}: the pipeline dead-letters it: {exc}")
        return events

    return read


@pytest.mark.kit
class BaseFeedbackPublisherTests:
    """Subclass and supply ``publisher`` (and ``read_back``) to check a FeedbackPublisher."""

    @pytest.fixture
    def publisher(self) -> Any:
        raise NotImplementedError("supply a `publisher` fixture that builds the implementation")

    @pytest.fixture
    def publish(self, publisher: Any) -> Callable[[Any], Awaitable[None]]:
        method = getattr(publisher, "publish", None)
        if method is None:
            pytest.fail(f"{type(publisher).__name__} has no publish(event); supply `publish`")
        return method  # type: ignore[no-any-return]

    @pytest.fixture
    def read_back(self) -> Callable[[], Awaitable[list[Any]]] | None:
        return None

    def test_is_a_core_feedback_publisher(self, publisher: Any) -> None:
        assert isinstance(publisher, core_protocol(PROTOCOL)), (
            f"{type(publisher).__name__} is not a Core FeedbackPublisher (no publish attribute)"
        )

    def test_members_match_core_signatures(self, publisher: Any) -> None:
        problems = signature_problems(publisher, PROTOCOL)
        assert not problems, f"{type(publisher).__name__} vs Core FeedbackPublisher: {problems}"

    async def test_publish_returns_none(
        self, publisher: Any, make_feedback_event: Callable[..., Any]
    ) -> None:
        if not hasattr(publisher, "publish"):
            pytest.fail(f"{type(publisher).__name__} has no publish(event)")
        result = await within(publisher.publish(make_feedback_event()), TIMEOUT_S, "publish")
        assert result is None, f"publish returned {result!r}; Core documents None"

    @pytest.mark.parametrize("level", ["ok", "soft", "hard"])
    async def test_each_level_arrives_as_published(
        self,
        level: str,
        publish: Callable[[Any], Awaitable[None]],
        read_back: Callable[[], Awaitable[list[Any]]] | None,
        make_feedback_event: Callable[..., Any],
    ) -> None:
        if read_back is None:
            pytest.skip("supply a `read_back` fixture to check what consumers receive")
        sent = make_feedback_event(level, coordinator_id=f"kit-{level}")
        await within(publish(sent), TIMEOUT_S, "publish")
        received = [e for e in await read_back() if e.coordinator_id == sent.coordinator_id]
        assert received, f"nothing from {sent.coordinator_id} reached a consumer"
        got = received[-1]
        assert {f: getattr(got, f) for f in FIELDS} == {f: getattr(sent, f) for f in FIELDS}

    async def test_received_timestamps_are_recent(
        self,
        publish: Callable[[Any], Awaitable[None]],
        read_back: Callable[[], Awaitable[list[Any]]] | None,
        make_feedback_event: Callable[..., Any],
    ) -> None:
        if read_back is None:
            pytest.skip("supply a `read_back` fixture to check what consumers receive")
        before = time.time()
        await within(publish(make_feedback_event("ok", coordinator_id="kit-ts")), TIMEOUT_S, "")
        got = [e for e in await read_back() if e.coordinator_id == "kit-ts"][-1]
        # A pipeline ignores feedback older than its stale-after window (10 s by default).
        assert math.isfinite(got.ts) and before - 10 <= got.ts <= time.time() + 1
