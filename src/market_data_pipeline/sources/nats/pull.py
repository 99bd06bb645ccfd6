"""Pull a JetStream consumer's messages through one subscription with a callback.

nats-py's ``PullSubscription.fetch`` waits for each message of a batch with a task, a timer
and a uuid of its own; in a stream of small batched messages that costs about as much as
parsing them (a fetch loop takes about twice the CPU of this one). ``Puller`` speaks the same
pull protocol (JetStream's ``CONSUMER.MSG.NEXT`` requests) and fetches much the same way:

- messages delivered and not fetched yet (a late answer to an earlier request) come first;
- then a request that the server answers at once with what it has (``no_wait``);
- and, only when that brought nothing, a request that waits up to the timeout for the next
  message. Unlike nats-py's, it returns that one message as soon as it comes, rather than
  waiting for a whole batch to come in: at the head of a stream a batch fills only as fast as
  it is published, and waiting for it held the first ticks of a live stream up to a second.

Each request names its own reply subject under the puller's inbox, so a status that ends an
earlier request (404 no messages, 408 expired, 409 ...) cannot end the current one; the
messages such a request still delivers are kept, in delivery order, for the next fetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from ...errors import BusError

API_NEXT = "$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
# What nats-py allows a JetStream subscription to hold before it drops messages (its own
# defaults): far above what the requests in flight can deliver.
PENDING_MSGS = 512 * 1024
PENDING_BYTES = 256 * 2**20
_HEARTBEAT = "100"
# Statuses that end a request and leave the consumer usable: no messages, expired, and the
# conflicts (a batch or wait limit of the consumer, a leader change, the consumer deleted).
_ENDS_REQUEST = frozenset({"404", "408", "409"})
_EXPIRES_MARGIN_NS = 100_000  # the server's 408 comes a little before the client gives up
# A waiting request needs at least this long left: a shorter one is no wait, and not every
# server takes an expiry below a millisecond.
MIN_WAIT_S = 0.001


class Puller:
    """Fetch batches of messages of consumer ``consumer`` on ``stream`` over connection ``nc``."""

    def __init__(self, nc: Any, stream: str, consumer: str) -> None:
        self._nc = nc
        self._next_subject = API_NEXT.format(stream=stream, consumer=consumer)
        self._inbox = nc.new_inbox()
        self._sub: Any = None
        self._held: list[Any] = []  # delivered and not fetched yet, in delivery order
        self._request = 0  # the number of the request under way (its reply subject's last token)
        self._want = 0  # messages held that end it
        self._ended = asyncio.Event()
        self._refused: str | None = None  # a status that no later request would change

    async def start(self) -> None:
        """Subscribe to the inbox the requests are answered on."""
        self._sub = await self._nc.subscribe(
            f"{self._inbox}.*",
            cb=self._deliver,
            pending_msgs_limit=PENDING_MSGS,
            pending_bytes_limit=PENDING_BYTES,
        )

    async def unsubscribe(self) -> None:
        """Stop taking deliveries: what is not acknowledged is delivered again to the next
        consumer."""
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def fetch(self, batch: int, timeout: float) -> list[Any]:  # noqa: ASYNC109 - nats-py's signature
        """Return up to ``batch`` messages: those the server has, or else the next one to come
        within ``timeout`` seconds ([] if none came); raise ``BusError`` when the server refuses
        the requests."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if len(self._held) < batch:
            await self._ask(batch - len(self._held), deadline, wait=False)
        if not self._held and deadline - loop.time() >= MIN_WAIT_S:
            await self._ask(1, deadline, wait=True)
        refused, self._refused = self._refused, None
        if refused is not None:  # what came meanwhile is delivered again, never acknowledged
            raise BusError(f"the server refused to deliver messages: {refused}")
        taken, self._held = self._held[:batch], self._held[batch:]
        return taken

    async def _ask(self, batch: int, deadline: float, *, wait: bool) -> None:
        """Send a pull request for ``batch`` messages; return once it has ended."""
        self._request += 1
        self._want = len(self._held) + batch
        self._ended.clear()
        request: dict[str, Any] = {"batch": batch}
        if wait:
            left_ns = int((deadline - asyncio.get_running_loop().time()) * 1e9)
            request["expires"] = max(left_ns - _EXPIRES_MARGIN_NS, int(MIN_WAIT_S * 1e9))
        else:
            request["no_wait"] = True
        reply = f"{self._inbox}.{self._request}"
        await self._nc.publish(self._next_subject, json.dumps(request).encode(), reply=reply)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await self._ended.wait()

    async def _deliver(self, msg: Any) -> None:
        status = msg.headers.get("Status") if msg.headers else None
        if status is None:
            self._held.append(msg)
            if len(self._held) >= self._want:
                self._ended.set()
            return
        if status == _HEARTBEAT or msg.subject != f"{self._inbox}.{self._request}":
            return  # a heartbeat, or the end of an earlier request
        if status not in _ENDS_REQUEST:
            description = msg.headers.get("Description", "")
            self._refused = f"{status} {description}".strip()
        self._ended.set()
