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
- poison entries (not JSON, no ``data``, unknown schema id, invalid event, an event dated more
  than ``max_skew_s`` ahead of this host's clock) go to the DLQ with the original data and a
  reason, are acknowledged, and never reach the caller;
- entries are read through a small server-side script: one bigger than ``max_entry_bytes``
  (default 64 KiB; a FeedbackEvent envelope is well under 1 KiB) is dead-lettered and
  acknowledged inside Redis without its data ever reaching this process, so poison cannot
  grow our memory; new entries are then polled every ``poll_ms`` instead of a blocking read;
- the DLQ is capped at about ``dlq_maxlen`` entries (``MAXLEN ~``); the entries trimmed off
  are counted in ``mdp_dlq_trimmed_total``;
- when Redis is unreachable the subscriber retries with capped exponential backoff and logs only
  when the connection state changes. Passwords never appear in logs or errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from .. import metrics
from ..core import FeedbackEvent, JsonCodec
from ..defaults import DEFAULT_DLQ_MAXLEN, DEFAULT_MAX_ENTRY_BYTES
from ..errors import BusError, UsageError
from ..flow.feedback import DEFAULT_CLOCK_SKEW_S
from ..urls import redact_url, scrub
from .base import FeedbackBus
from .pulse import PoisonEntryError, decode_event, encode_event, refuse_future

log = logging.getLogger(__name__)

STREAM = "telemetry.feedback"
DEFAULT_NAMESPACE = "mdp"
DEFAULT_GROUP = "pipeline"
DEFAULT_BLOCK_MS = 500
DEFAULT_BACKOFF_CAP_S = 5.0
DEFAULT_CLAIM_IDLE_MS = 30_000
DEFAULT_DEDUPE_SIZE = 10_000
DEFAULT_MAXLEN = 100_000
DEFAULT_POLL_MS = 50
_CLAIM_SCRIPT = """
return redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', 100, 'JUSTID')
"""
OVERSIZE_FIELD = b"mdp-oversize"  # what the read script returns in place of an oversize entry

# XREADGROUP inside Redis: an entry whose fields add up to more than the limit is dead-lettered
# (without its data) and acknowledged there, and only its id and size come back.
# KEYS: stream, dlq. ARGV: group, consumer, count, cursor, max bytes, dlq maxlen, now.
_READ_SCRIPT = """
local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
                         'STREAMS', KEYS[1], ARGV[4])
if not reply then return {} end
local out, limit = {}, tonumber(ARGV[5])
for _, entry in ipairs(reply[1][2]) do
  local fields, size = entry[2], 0
  if fields then for i = 1, #fields do size = size + #fields[i] end end
  if size > limit then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'original_id', entry[1],
               'reason', 'entry of ' .. size .. ' bytes is over the limit of ' .. limit ..
               ' bytes; dead-lettered unread', 'data', '', 'group', ARGV[1], 'ts', ARGV[7])
    redis.call('XACK', KEYS[1], ARGV[1], entry[1])
    table.insert(out, {entry[1], {'mdp-oversize', tostring(size)}})
  else
    table.insert(out, entry)
  end
end
return out
"""
_RETRYABLE = (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError)


@dataclass(frozen=True)
class DeadLetter:
    """One entry of the dead-letter stream."""

    id: str
    original_id: str
    reason: str
    data: bytes
    group: str
    ts: float


def default_consumer_name() -> str:
    """Return a consumer name unique to this process: ``host-pid-random``."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


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
        stream_key: str | None = None,
        max_skew_s: float = DEFAULT_CLOCK_SKEW_S,
        max_entry_bytes: int = DEFAULT_MAX_ENTRY_BYTES,
        dlq_maxlen: int = DEFAULT_DLQ_MAXLEN,
        poll_ms: int = DEFAULT_POLL_MS,
    ) -> None:
        super().__init__()
        self._connected = False
        self._url = url
        # A whole key, e.g. market-data-store's "mdp:mdp.telemetry.feedback" (--feedback-stream).
        self.key = stream_key or f"{namespace}:{STREAM}"
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
        self._max_skew_s = max_skew_s
        if max_entry_bytes < 1 or dlq_maxlen < 1:
            raise UsageError("the bus needs max_entry_bytes >= 1 and dlq_maxlen >= 1")
        self._max_entry_bytes = max_entry_bytes
        self._dlq_maxlen = dlq_maxlen
        self._poll_s = min(poll_ms, block_ms) / 1000
        self._codec = JsonCodec("v1")
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_loaded = False
        self._closed = False
        self._closing = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._logged_state: bool | None = None
        try:
            self._redis = aioredis.Redis.from_url(
                url,
                socket_connect_timeout=2.0,
                socket_timeout=block_ms / 1000 + 5.0,
            )
        except ValueError as exc:
            raise UsageError(f"bad Redis URL {redact_url(url)}: {scrub(str(exc), url)}") from None

    def describe(self) -> str:
        """Return the URL (password hidden) and stream key."""
        return f"{redact_url(self._url)} stream {self.key} group {self.group}"

    async def verify(self) -> None:
        """Refuse credentials Redis rejects (``UsageError``, exit 2): no retry can fix them.

        An unreachable Redis passes: the subscriber keeps retrying and the fallback applies.
        """
        try:
            await self._redis.ping()
        except (redis_errors.AuthenticationError, redis_errors.AuthorizationError) as exc:
            raise self._rejected(exc) from None
        except redis_errors.ResponseError as exc:
            if "AUTH" not in str(exc).upper():
                raise BusError(f"{redact_url(self._url)}: {scrub(str(exc), self._url)}") from None
            raise self._rejected(exc) from None
        except (redis_errors.RedisError, OSError):
            return

    def _rejected(self, exc: Exception) -> UsageError:
        detail = scrub(str(exc), self._url)
        return UsageError(f"the Redis bus {redact_url(self._url)} rejected the login: {detail}")

    # -- publishing ----------------------------------------------------------------------------
    async def publish(self, event: FeedbackEvent) -> None:
        """Publish one FeedbackEvent (Core's ``FeedbackPublisher.publish``)."""
        await self.publish_entry(event)

    async def publish_entry(self, event: FeedbackEvent) -> str:
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
    async def subscribe(self) -> AsyncGenerator[FeedbackEvent, None]:
        """Yield valid FeedbackEvents for our group, surviving Redis outages, until ``close()``.

        One subscription per bus object: the consumer name identifies this process.
        """
        delay = 0.1
        self._idle.clear()
        try:
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
                    await self._pause(delay * (0.5 + secrets.randbelow(1000) / 1000))
                    delay = min(delay * 2, self._backoff_cap_s)
        finally:
            self._idle.set()

    async def _pause(self, seconds: float) -> None:
        """Sleep between reconnects; ``close()`` cuts it short."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._closing.wait()

    async def _consume(self) -> AsyncGenerator[FeedbackEvent, None]:
        await self._ensure_group()
        await self._load_seen()
        self._mark_connected()
        claimed_at = time.monotonic()
        await self._claim()
        cursor, lag_at = "0", 0.0
        settle = _Settlement()
        try:
            while not self._closed:
                pending = cursor != ">"
                entries = await self._read(cursor)
                if pending:
                    cursor = _text(entries[-1][0]) if entries else ">"
                elif not entries:
                    await self._pause(self._poll_s)
                for raw_id, fields in entries:
                    entry_id = _text(raw_id)
                    event, digest = self._accept(entry_id, fields, settle)
                    if event is not None:
                        yield event
                        settle.handled(entry_id, digest)  # the caller asked for the next one
                await self._settle(settle)
                now = time.monotonic()
                if now - lag_at >= 1.0:
                    lag_at = now
                    await self._update_lag()
                if not pending and now - claimed_at >= self._claim_idle_ms / 1000:
                    claimed_at = now
                    if await self._claim():
                        cursor = "0"
        finally:
            # The caller stopped: acknowledge what it did handle (best effort; the rest is
            # redelivered, which is at-least-once, not loss).
            with contextlib.suppress(redis_errors.RedisError, OSError):
                await self._settle(settle)

    async def _read(self, cursor: str) -> list[tuple[Any, Any]]:
        """Read up to ``batch`` entries after ``cursor``; oversize ones come back as markers."""
        reply = await self._redis.eval(
            _READ_SCRIPT,
            2,
            self.key,
            self.dlq_key,
            self.group,
            self.consumer,
            self._batch,
            cursor,
            self._max_entry_bytes,
            self._dlq_maxlen,
            repr(time.time()),
        )
        return [(raw_id, _pairs(fields)) for raw_id, fields in reply]

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
            # Ids only (JUSTID, through a script: redis-py drops the cursor of a JUSTID reply);
            # the read script checks the sizes when the claimed entries are read.
            reply = await self._redis.eval(
                _CLAIM_SCRIPT, 1, self.key, self.group, self.consumer, self._claim_idle_ms, start
            )
            start, claimed = _text(reply[0]), claimed + len(reply[1])
            if start in ("0-0", "0"):
                return claimed

    def _accept(
        self, entry_id: str, fields: Any, settle: _Settlement
    ) -> tuple[FeedbackEvent | None, str]:
        """Return (event, digest) to hand out, or (None, "") for an entry settled otherwise."""
        if not fields:
            # Redis returns a pending entry without fields once the stream was trimmed past it.
            log.warning("entry %s of %s was trimmed before it was handled", entry_id, self.key)
            settle.skip(entry_id, "trimmed")
            return None, ""
        if OVERSIZE_FIELD in fields:  # dead-lettered and acknowledged inside Redis already
            size = _text(fields[OVERSIZE_FIELD])
            log.warning("dead-lettered entry %s of %s unread: %s bytes", entry_id, self.key, size)
            metrics.DLQ.inc()
            settle.skipped.append("dead_lettered")
            return None, ""
        data = fields.get(b"data")
        if data is None:
            return self._poison(entry_id, b"", "entry has no 'data' field", settle)
        digest = _digest(data)
        if digest in self._seen:
            settle.skip(entry_id, "duplicate")
            return None, ""
        try:
            event = decode_event(data)
            refuse_future(event, time.time(), self._max_skew_s)
        except PoisonEntryError as exc:
            return self._poison(entry_id, data, str(exc), settle)
        self._remember(digest)
        return event, digest

    def _poison(
        self, entry_id: str, data: bytes, reason: str, settle: _Settlement
    ) -> tuple[None, str]:
        log.warning("dead-lettering entry %s of %s: %s", entry_id, self.key, reason)
        settle.dead.append((entry_id, data, reason))
        return None, ""

    def _remember(self, digest: str) -> None:
        self._seen[digest] = None
        self._seen.move_to_end(digest)
        while len(self._seen) > self._dedupe_size:
            self._seen.popitem(last=False)

    async def _settle(self, settle: _Settlement) -> None:
        """Acknowledge, remember and dead-letter a batch in one transaction."""
        if settle.empty:
            return
        pipe = self._redis.pipeline(transaction=True)
        if settle.dead:
            pipe.xlen(self.dlq_key)
        for entry_id, data, reason in settle.dead:
            fields = {"original_id": entry_id, "reason": reason, "data": data}
            fields.update(group=self.group, ts=repr(time.time()))
            pipe.xadd(self.dlq_key, fields, maxlen=self._dlq_maxlen, approximate=True)
        if settle.dead:
            pipe.xlen(self.dlq_key)
        ids = settle.acks + [entry_id for entry_id, _, _ in settle.dead]
        pipe.xack(self.key, self.group, *ids)
        if settle.digests:
            now = time.time()
            pipe.zadd(self.seen_key, dict.fromkeys(settle.digests, now))
            pipe.zremrangebyrank(self.seen_key, 0, -self._dedupe_size - 1)
        results = await pipe.execute()
        if settle.dead:
            before, after = results[0], results[len(settle.dead) + 1]
            metrics.DLQ_TRIMMED.inc(max(0, before + len(settle.dead) - after))
        metrics.DLQ.inc(len(settle.dead))
        for outcome, n in settle.outcomes().items():
            metrics.FEEDBACK_EVENTS.labels(level="unknown", outcome=outcome).inc(n)
        settle.clear()

    async def _update_lag(self) -> None:
        for info in await self._redis.xinfo_groups(self.key):
            if _text(info.get("name")) == self.group:
                lag = info.get("lag")
                metrics.BUS_CONSUMER_LAG.set(lag if lag is not None else info.get("pending", 0))

    def _mark_connected(self) -> None:
        self._set_connected(True)
        if self._logged_state is not True:
            self._logged_state = True
            log.info("feedback bus connected: %s", self.describe())

    def _mark_disconnected(self, exc: BaseException) -> None:
        self._set_connected(False)
        if self._logged_state is not False:
            # Also logged when Redis is down at start. redis-py messages name host and port,
            # never the password.
            self._logged_state = False
            log.warning("feedback bus unreachable (%s), retrying: %s", self.describe(), exc)

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

    async def tail(
        self, *, from_start: bool = False, also: Sequence[str] = ()
    ) -> AsyncGenerator[tuple[str, str, FeedbackEvent | PoisonEntryError]]:
        """Yield ``(key, entry_id, event or PoisonEntryError)`` as entries arrive.

        Reads this bus's stream and the ``also`` keys, each in entry order, outside any consumer
        group (nothing is taken away from a running pipeline).
        """
        keys = list(dict.fromkeys([self.key, *also]))
        try:
            # The newest ids now rather than "$" on every read: an entry added between two reads
            # would be skipped by "$".
            last = {key: "0-0" if from_start else await self._newest_id(key) for key in keys}
            while not self._closed:
                reply = await self._redis.xread(last, count=100, block=self._block_ms)
                for raw_key, entries in reply or []:
                    key = _text(raw_key)
                    for entry_id, fields in entries:
                        last[key] = _text(entry_id)
                        yield key, last[key], _tail_item(fields)
        except (redis_errors.RedisError, OSError) as exc:
            raise BusError(f"cannot read {', '.join(keys)}: {exc}") from None

    async def _newest_id(self, key: str) -> str:
        newest = await self._redis.xrevrange(key, count=1)
        return _text(newest[0][0]) if newest else "0-0"

    async def close(self) -> None:
        """Stop consuming (acknowledging what was handled), then close the connections."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        # A blocked read returns within block_ms; let the subscriber settle its last batch.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._block_ms / 1000 + 1.0):
                await self._idle.wait()
        # Closing connections to a dead server: nothing is left to release.
        with contextlib.suppress(redis_errors.RedisError, OSError):
            await self._redis.aclose()


class _Settlement:
    """What a batch of entries needs once handled: acks, digests to remember, dead letters."""

    def __init__(self) -> None:
        self.acks: list[str] = []
        self.digests: list[str] = []
        self.dead: list[tuple[str, bytes, str]] = []
        self.skipped: list[str] = []

    @property
    def empty(self) -> bool:
        return not (self.acks or self.dead)

    def handled(self, entry_id: str, digest: str) -> None:
        self.acks.append(entry_id)
        self.digests.append(digest)

    def skip(self, entry_id: str, outcome: str) -> None:
        self.acks.append(entry_id)
        self.skipped.append(outcome)

    def outcomes(self) -> dict[str, int]:
        counts = {outcome: self.skipped.count(outcome) for outcome in set(self.skipped)}
        return {**counts, "dead_lettered": len(self.dead)} if self.dead else counts

    def clear(self) -> None:
        self.acks.clear()
        self.digests.clear()
        self.dead.clear()
        self.skipped.clear()


def _pairs(fields: Any) -> dict[bytes, bytes] | None:
    """Turn a script's flat ``[field, value, ...]`` list into a dict (None: a trimmed entry)."""
    if not fields:
        return None
    return dict(zip(fields[::2], fields[1::2], strict=True))


def _tail_item(fields: dict[bytes, bytes]) -> FeedbackEvent | PoisonEntryError:
    data = fields.get(b"data")
    try:
        if data is None:
            raise PoisonEntryError("entry has no 'data' field")
        return decode_event(data)
    except PoisonEntryError as exc:
        return exc


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
