"""How ``Puller`` reads the server's statuses (the end of a request, or a refusal)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from nats.aio.msg import Msg

from market_data_pipeline.errors import BusError
from market_data_pipeline.sources.nats.pull import Puller


class _Connection:
    """Records the pull requests; ``answer`` is what the server sends back to each."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, bytes, str]] = []
        self.puller: Puller | None = None
        self.answer: list[tuple[str | None, bytes]] = []  # (status, data) per message

    def new_inbox(self) -> str:
        return "_INBOX.test"

    async def subscribe(self, subject: str, **options: Any) -> object:
        return object()

    async def publish(self, subject: str, payload: bytes, reply: str) -> None:
        self.requests.append((subject, payload, reply))
        assert self.puller is not None
        for status, data in self.answer:
            headers = {"Status": status, "Description": "Bad Request"} if status else None
            msg = Msg(_client=None, subject=reply, data=data, headers=headers)  # type: ignore[arg-type]
            asyncio.get_running_loop().call_soon(asyncio.ensure_future, self.puller._deliver(msg))


async def _puller(answer: list[tuple[str | None, bytes]]) -> tuple[Puller, _Connection]:
    nc = _Connection()
    puller = Puller(nc, "S", "d")
    nc.puller, nc.answer = puller, answer
    await puller.start()
    return puller, nc


async def test_a_status_that_is_no_end_of_request_is_a_bus_error_naming_it() -> None:
    puller, _ = await _puller([("400", b"")])
    with pytest.raises(BusError, match="400 Bad Request"):
        await puller.fetch(5, timeout=2)


async def test_no_messages_ends_the_no_wait_request_and_the_waiting_one_follows() -> None:
    puller, nc = await _puller([("404", b"")])
    assert await puller.fetch(5, timeout=0.2) == []
    bodies = [payload for _, payload, _ in nc.requests]
    assert bodies == [b'{"batch": 5, "no_wait": true}', bodies[1]]
    assert b'"batch": 1, "expires"' in bodies[1]  # the next message, whenever it comes


async def test_a_status_of_an_earlier_request_does_not_end_the_current_one() -> None:
    puller, nc = await _puller([])
    stale = Msg(_client=None, subject="_INBOX.test.0", headers={"Status": "408"})  # type: ignore[arg-type]
    waiting = asyncio.ensure_future(puller.fetch(1, timeout=5))
    await asyncio.sleep(0.05)
    await puller._deliver(stale)
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await puller._deliver(Msg(_client=None, subject="s.x", data=b"tick"))  # type: ignore[arg-type]
    assert [m.data for m in await waiting] == [b"tick"]
    assert [reply for _, _, reply in nc.requests] == ["_INBOX.test.1"]  # still the first one


async def test_a_fetch_with_under_a_millisecond_left_sends_no_waiting_request() -> None:
    puller, nc = await _puller([("404", b"")])
    assert await puller.fetch(5, timeout=0.0005) == []
    assert [payload for _, payload, _ in nc.requests] == [b'{"batch": 5, "no_wait": true}']


async def test_a_waiting_request_never_asks_for_less_than_a_millisecond() -> None:
    puller, nc = await _puller([("408", b"")])
    deadline = asyncio.get_running_loop().time() + 0.0002
    await puller._ask(1, deadline, wait=True)
    assert json.loads(nc.requests[-1][1]) == {"batch": 1, "expires": 1_000_000}
