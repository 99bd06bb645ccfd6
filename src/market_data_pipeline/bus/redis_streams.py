"""Feedback bus over Redis Streams in Core's Pulse wire format.

Wire format (Core's ``RedisStreamsBus``): one stream entry per event with a single field ``data``
holding a JSON envelope ``{ts, key, meta: {schema_id, track, headers, hash}, payload}`` made by
Core's ``JsonCodec``; stream key ``{namespace}:telemetry.feedback``, dead letters in ``{key}.dlq``.
We publish with schema id ``telemetry.FeedbackEvent`` and accept both ids Core uses.

Where we differ from Core's bus, on purpose:
- the consumer group is created at id ``0`` (with MKSTREAM), so entries published before the
  group existed are delivered, and entries are XACKed once the caller has handled them
  (when it asks for the next one);
- on (re)connect we first claim entries a dead consumer of our group left pending (XAUTOCLAIM,
  idle longer than ``claim_idle_ms``), then read our own pending entries (id ``0``), then new ones;
- duplicates (redelivered entries, or the same envelope published twice) are recognised by a
  digest of the envelope bytes: a bounded in-process LRU, backed by a bounded sorted set
  ``{key}.seen:{group}`` so a restarted consumer remembers what the group already handled;
- poison entries (not JSON, no ``data``, unknown schema id, invalid event) go to the DLQ with the
  original data and a reason, are acknowledged, and never reach the caller;
- when Redis is unreachable the subscriber retries with capped exponential backoff and logs only
  when the connection state changes. Passwords never appear in logs or errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis import exceptions as redis_errors

from .. import metrics
from ..core import FEEDBACK_SCHEMA_ID, FEEDBACK_SCHEMA_IDS, FeedbackEvent, JsonCodec
from ..errors import BusError, UsageError
from .base import FeedbackBus

log = logging.getLogger(__name__)

STREAM = "telemetry.feedback"
DEFAULT_NAMESPACE = "mdp"
DEFAULT_GROUP = "pipeline"
DEFAULT_BLOCK_MS = 500
DEFAULT_BACKOFF_CAP_S = 5.0
DEFAULT_CLAIM_IDLE_MS = 30_000
DEFAULT_DEDUPE_SIZE = 10_000
DEFAULT_MAXLEN = 100_000
_REASON_MAX = 500
_RETRYABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


class PoisonEntryError(BusError):
    """A stream entry that is not a valid FeedbackEvent envelope; ``str()`` is the reason."""


@dataclass(frozen=True)
class DeadLetter:
    """One entry of the dead-letter stream."""

    id: str
    original_id: str
    reason: str
    data: bytes
    group: str
    ts: float


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def default_consumer_name() -> str:
    """Return a consumer name unique to this process: ``host-pid-random``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def encode_event(event: Any, codec: JsonCodec | None = None) -> bytes:
    """Encode a FeedbackEvent as a Pulse envelope (Core's JsonCodec, our schema id)."""
    return bytes((codec or JsonCodec("v1")).encode(FEEDBACK_SCHEMA_ID, event))


def decode_event(data: bytes) -> Any:
    """Decode and validate a Pulse envelope holding a FeedbackEvent; raise PoisonEntryError."""
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise PoisonEntryError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise PoisonEntryError("envelope is not a JSON object")
    meta = raw.get("meta")
    if not isinstance(meta, dict):
        raise PoisonEntryError("envelope has no meta object")
    schema_id = meta.get("schema_id")
    if not isinstance(schema_id, str) or schema_id not in FEEDBACK_SCHEMA_IDS:
        raise PoisonEntryError(f"unknown schema_id {schema_id!r}"[:_REASON_MAX])
    if meta.get("track", "v1") not in ("v1", "v2"):
        raise PoisonEntryError(f"unknown track {meta.get('track')!r}"[:_REASON_MAX])
    ts = raw.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        raise PoisonEntryError(f"envelope ts is not a finite number: {ts!r}"[:_REASON_MAX])
    payload = raw.get("payload")
    if not isinstance(payload, dict):
        raise PoisonEntryError("envelope payload is not a JSON object")
    try:
        event = FeedbackEvent.model_validate(payload)
    except ValidationError as exc:
        raise PoisonEntryError(f"invalid FeedbackEvent: {_short(exc)}") from None
    if not math.isfinite(event.ts):
        raise PoisonEntryError(f"FeedbackEvent ts is not finite: {event.ts!r}")
    return event


def _short(exc: ValidationError) -> str:
    parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts)[:_REASON_MAX]


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class RedisStreamBus(FeedbackBus):
    """Publish and consume FeedbackEvents on a Redis stream through a consumer group."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        group: str = DEFAULT_GROUP,
        consumer: str | None = None,
        block_ms: int = DEFAULT_BLOCK_MS,
        batch: int = 100,
        backoff_cap_s: float = DEFAULT_BACKOFF_CAP_S,
        claim_idle_ms: int = DEFAULT_CLAIM_IDLE_MS,
        dedupe_size: int = DEFAULT_DEDUPE_SIZE,
        maxlen: int | None = DEFAULT_MAXLEN,
    ) -> None:
        super().__init__()
        self._connected = False
        self._url = url
        self.key = f"{namespace}:{STREAM}"
        self.dlq_key = f"{self.key}.dlq"
        self.seen_key = f"{self.key}.seen:{group}"
        self.group = group
        self.consumer = consumer or default_consumer_name()
        self._block_ms = block_ms
        self._batch = batch
        self._backoff_cap_s = backoff_cap_s
        self._claim_idle_ms = claim_idle_ms
        self._dedupe_size = dedupe_size
        self._maxlen = maxlen
        self._codec = JsonCodec("v1")
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_loaded = False
        self._acks = 0
        self._closed = False
        try:
            self._redis = aioredis.Redis.from_url(
                url,
                socket_connect_timeout=2.0,
                socket_timeout=block_ms / 1000 + 5.0,
            )
        except ValueError as exc:
            raise UsageError(f"bad Redis URL {redact_url(url)}: {exc}") from None

    def describe(self) -> str:
        """Return the URL (password hidden) and stream key."""
        return f"{redact_url(self._url)} stream {self.key} group {self.group}"

    # -- publishing ----------------------------------------------------------------------------
    async def publish(self, event: Any) -> None:
        """Publish one FeedbackEvent (Core's ``FeedbackPublisher.publish``)."""
        await self.publish_entry(event)

    async def publish_entry(self, event: Any) -> str:
        """Publish one FeedbackEvent; return the stream entry id."""
        if not isinstance(event, FeedbackEvent):
            raise BusError(f"expected a FeedbackEvent, got {type(event).__name__}")
        return await self.publish_raw(encode_event(event, self._codec))

    async def publish_raw(self, data: bytes) -> str:
        """Append an already encoded envelope as one entry; return its id."""
        if self._closed:
            raise BusError("the feedback bus is closed")
        try:
            entry_id = await self._redis.xadd(self.key, {"data": data}, maxlen=self._maxlen)
        except (redis_errors.RedisError, OSError) as exc:
            raise BusError(f"cannot publish to {redact_url(self._url)}: {exc}") from None
        return _text(entry_id)

    # -- consuming -----------------------------------------------------------------------------
    async def subscribe(self) -> AsyncIterator[Any]:
        """Yield valid FeedbackEvents for our group, surviving Redis outages, until ``close()``."""
        delay = 0.1
        while not self._closed:
            try:
                async with contextlib.aclosing(self._consume()) as events:
                    async for event in events:
                        delay = 0.1
                        yield event
            except (*_RETRYABLE, redis_errors.RedisError) as exc:
                if self._closed:
                    break
                self._mark_disconnected(exc)
                await asyncio.sleep(delay * (0.5 + secrets.randbelow(1000) / 1000))
                delay = min(delay * 2, self._backoff_cap_s)

    async def _consume(self) -> AsyncGenerator[Any, None]:
        await self._ensure_group()
        await self._load_seen()
        self._mark_connected()
        claimed_at = time.monotonic()
        await self._claim()
        cursor, lag_at = "0", 0.0
        while not self._closed:
            pending = cursor != ">"
            block = None if pending else self._block_ms
            reply = await self._redis.xreadgroup(
                self.group, self.consumer, {self.key: cursor}, count=self._batch, block=block
            )
            entries = reply[0][1] if reply else []
            if pending:
                cursor = _text(entries[-1][0]) if entries else ">"
            for entry_id, fields in entries:
                event, digest = await self._accept(_text(entry_id), fields)
                if event is not None:
                    yield event
                    await self._ack(_text(entry_id), digest)
            now = time.monotonic()
            if now - lag_at >= 1.0:
                lag_at = now
                await self._update_lag()
            if not pending and now - claimed_at >= self._claim_idle_ms / 1000:
                claimed_at = now
                if await self._claim():
                    cursor = "0"

    async def _ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self.key, self.group, id="0", mkstream=True)
        except redis_errors.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _load_seen(self) -> None:
        if self._seen_loaded:
            return
        digests = await self._redis.zrange(self.seen_key, -self._dedupe_size, -1)
        for digest in digests:
            self._remember(_text(digest))
        self._seen_loaded = True

    async def _claim(self) -> int:
        """Move entries a dead consumer left pending into our own pending list."""
        start, claimed = "0-0", 0
        while True:
            reply = await self._redis.xautoclaim(
                self.key, self.group, self.consumer, self._claim_idle_ms, start, count=100
            )
            start, claimed = _text(reply[0]), claimed + len(reply[1])
            if start in ("0-0", "0"):
                return claimed

    async def _accept(self, entry_id: str, fields: Any) -> tuple[Any, str]:
        """Return (event, digest) to hand out, or (None, "") after dead-lettering or a duplicate."""
        if not fields:
            # Redis returns a pending entry without fields once the stream was trimmed past it.
            log.warning("entry %s of %s was trimmed before it was handled", entry_id, self.key)
            await self._redis.xack(self.key, self.group, entry_id)
            metrics.FEEDBACK_EVENTS.labels(level="unknown", outcome="trimmed").inc()
            return None, ""
        data = fields.get(b"data")
        if data is None:
            await self._dead_letter(entry_id, b"", "entry has no 'data' field")
            return None, ""
        digest = _digest(data)
        if digest in self._seen:
            await self._redis.xack(self.key, self.group, entry_id)
            metrics.FEEDBACK_EVENTS.labels(level="unknown", outcome="duplicate").inc()
            return None, ""
        try:
            event = decode_event(data)
        except PoisonEntryError as exc:
            await self._dead_letter(entry_id, data, str(exc))
            return None, ""
        self._remember(digest)
        return event, digest

    def _remember(self, digest: str) -> None:
        self._seen[digest] = None
        self._seen.move_to_end(digest)
        while len(self._seen) > self._dedupe_size:
            self._seen.popitem(last=False)

    async def _ack(self, entry_id: str, digest: str) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.xack(self.key, self.group, entry_id)
        pipe.zadd(self.seen_key, {digest: time.time()})
        self._acks += 1
        if self._acks % 256 == 0:
            pipe.zremrangebyrank(self.seen_key, 0, -self._dedupe_size - 1)
        await pipe.execute()

    async def _dead_letter(self, entry_id: str, data: bytes, reason: str) -> None:
        log.warning("dead-lettering entry %s of %s: %s", entry_id, self.key, reason)
        pipe = self._redis.pipeline(transaction=True)
        pipe.xadd(
            self.dlq_key,
            {
                "original_id": entry_id,
                "reason": reason,
                "data": data,
                "group": self.group,
                "ts": repr(time.time()),
            },
        )
        pipe.xack(self.key, self.group, entry_id)
        await pipe.execute()
        metrics.DLQ.inc()
        metrics.FEEDBACK_EVENTS.labels(level="unknown", outcome="dead_lettered").inc()

    async def _update_lag(self) -> None:
        for info in await self._redis.xinfo_groups(self.key):
            if _text(info.get("name")) == self.group:
                lag = info.get("lag")
                metrics.BUS_CONSUMER_LAG.set(lag if lag is not None else info.get("pending", 0))

    def _mark_connected(self) -> None:
        if self._set_connected(True):
            log.info("feedback bus connected: %s", self.describe())

    def _mark_disconnected(self, exc: BaseException) -> None:
        if self._set_connected(False):
            # redis-py messages name host and port, never the password.
            log.warning("feedback bus disconnected (%s), retrying: %s", self.describe(), exc)

    # -- inspection ----------------------------------------------------------------------------
    async def dead_letters(self, count: int = 100) -> list[DeadLetter]:
        """Return the newest ``count`` dead-lettered entries, newest first."""
        try:
            rows = await self._redis.xrevrange(self.dlq_key, count=count)
        except (redis_errors.RedisError, OSError) as exc:
            raise BusError(
                f"cannot read {self.dlq_key} at {redact_url(self._url)}: {exc}"
            ) from None
        return [_dead_letter_row(_text(i), f) for i, f in rows]

    async def tail(self, *, from_start: bool = False) -> AsyncIterator[tuple[str, Any]]:
        """Yield ``(entry_id, event or PoisonEntryError)`` as entries arrive, outside any group."""
        last = "0" if from_start else "$"
        while not self._closed:
            try:
                reply = await self._redis.xread({self.key: last}, count=100, block=self._block_ms)
            except (redis_errors.RedisError, OSError) as exc:
                raise BusError(f"cannot read {self.key}: {exc}") from None
            for entry_id, fields in reply[0][1] if reply else []:
                last = _text(entry_id)
                data = fields.get(b"data")
                try:
                    if data is None:
                        raise PoisonEntryError("entry has no 'data' field")
                    yield last, decode_event(data)
                except PoisonEntryError as exc:
                    yield last, exc

    async def close(self) -> None:
        """Stop consuming and close the connections."""
        if self._closed:
            return
        self._closed = True
        # Closing connections to a dead server: nothing is left to release.
        with contextlib.suppress(redis_errors.RedisError, OSError):
            await self._redis.aclose()


def _dead_letter_row(entry_id: str, fields: dict[bytes, bytes]) -> DeadLetter:
    ts = _text(fields.get(b"ts", b"0"))
    try:
        when = float(ts)
    except ValueError:
        when = 0.0
    return DeadLetter(
        id=entry_id,
        original_id=_text(fields.get(b"original_id", b"")),
        reason=_text(fields.get(b"reason", b"")),
        data=fields.get(b"data", b""),
        group=_text(fields.get(b"group", b"")),
        ts=when,
    )
