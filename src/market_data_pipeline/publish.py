"""Publish tick frames to a JetStream stream: one message per symbol batch, in order.

Subjects are ``PREFIX.SYMBOL`` (``PREFIX.PARTITION.SYMBOL`` with ``partitions``), where the symbol
token has every character NATS gives a meaning (``.``, ``*``, ``>``, whitespace) replaced by
``_``; the body carries the real symbol. The partition is ``fnv32a(token) % partitions``, the
hash NATS's own subject-mapping function ``{{partition(N,1)}}`` uses, so a server-side mapping
``ticks.* -> ticks.{{partition(N,1)}}.{{wildcard(1)}}`` sends each symbol to the same partition.

Bodies: ``arrow`` (an Arrow IPC stream of up to ``batch_ticks`` ticks, the default), ``json`` (a
Core ``Trade`` object, or a JSON array of them when ``batch_ticks > 1``) or ``pulse`` (Core's
Pulse envelope of one Trade per message). Messages are sent in frame order with asynchronous
acknowledgements; every acknowledgement is awaited before the publisher reports success.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from .errors import BusError, UsageError
from .sources.nats.bodies import encode_arrow
from .sources.nats.source import connect
from .urls import redact_url

Body = Literal["arrow", "json", "pulse"]
DEFAULT_PREFIX = "ticks"
DEFAULT_BATCH_TICKS = 1_000
_UNSAFE = re.compile(r"[.*>\s]")
_PENDING_ACKS = 4_096


@dataclass
class PublishReport:
    """What a publish did."""

    stream: str
    subjects: str
    messages: int = 0
    ticks: int = 0
    symbols: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    stopped_by: str | None = None  # the signal that ended it early, after the acks came


def subject_token(symbol: str) -> str:
    """Return ``symbol`` as one NATS subject token."""
    return _UNSAFE.sub("_", symbol) or "_"


def partition_of(token: str, partitions: int) -> int:
    """Return NATS's ``partition(partitions, 1)`` of a one-token key: FNV-1a 32-bit, modulo."""
    h = 0x811C9DC5
    for byte in token.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h % partitions


def subject_for(prefix: str, symbol: str, partitions: int | None) -> str:
    """Return the subject a symbol's ticks are published to."""
    token = subject_token(symbol)
    if partitions is None:
        return f"{prefix}.{token}"
    return f"{prefix}.{partition_of(token, partitions)}.{token}"


async def ensure_stream(js: Any, stream: str, prefix: str) -> None:
    """Create ``stream`` on ``PREFIX.>`` when missing; refuse one that does not capture it."""
    import nats.js.errors

    try:
        info = await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        await js.add_stream(name=stream, subjects=[f"{prefix}.>"])
        return
    subjects = list(info.config.subjects or [])
    if f"{prefix}.>" not in subjects:
        raise UsageError(
            f"stream {stream!r} captures {subjects}, not {prefix}.>: choose another --stream "
            "or --subject-prefix"
        )


class TickPublisher:
    """Publish frames of ticks (``frames.TICK_SCHEMA``) to one stream."""

    def __init__(
        self,
        js: Any,
        *,
        stream: str,
        prefix: str = DEFAULT_PREFIX,
        body: Body = "arrow",
        batch_ticks: int = DEFAULT_BATCH_TICKS,
        partitions: int | None = None,
    ) -> None:
        if batch_ticks < 1:
            raise UsageError(f"--batch-ticks must be >= 1, not {batch_ticks}")
        if partitions is not None and partitions < 1:
            raise UsageError(f"--partitions must be >= 1, not {partitions}")
        if body == "pulse" and batch_ticks != 1:
            batch_ticks = 1  # an envelope holds one Trade
        self.js = js
        self.stream_name = stream
        self.prefix = prefix
        self.body = body
        self.batch_ticks = batch_ticks
        self.partitions = partitions
        suffix = ">" if partitions is None else "*.>"
        self.report = PublishReport(stream=stream, subjects=f"{prefix}.{suffix}")
        self._symbols: set[str] = set()
        self._acks: list[Any] = []

    async def write(self, frame: pl.DataFrame) -> None:
        """Publish one frame: per symbol, in row order, ``batch_ticks`` ticks a message."""
        for part in frame.partition_by("symbol", maintain_order=True):
            symbol = str(part["symbol"][0])
            self._symbols.add(symbol)
            subject = subject_for(self.prefix, symbol, self.partitions)
            for offset in range(0, part.height, self.batch_ticks):
                chunk = part.slice(offset, self.batch_ticks)
                future = await self.js.publish_async(subject, self._encode(chunk), wait_stall=30)
                self._acks.append(future)
                self.report.messages += 1
                self.report.ticks += chunk.height
            if len(self._acks) >= _PENDING_ACKS:
                await self._settle()

    async def finish(self) -> PublishReport:
        """Wait for every acknowledgement and return the report."""
        await self._settle()
        self.report.symbols = len(self._symbols)
        return self.report

    async def _settle(self) -> None:
        acks, self._acks = self._acks, []
        for future in acks:
            try:
                ack = await future
            except Exception as exc:  # a lost publish must fail the command
                raise BusError(f"publishing to stream {self.stream_name} failed: {exc}") from None
            seq = int(ack.seq)
            if self.report.first_seq is None:
                self.report.first_seq = seq
            self.report.last_seq = seq

    def _encode(self, chunk: pl.DataFrame) -> bytes:
        if self.body == "arrow":
            return encode_arrow(chunk.select("symbol", "ts_ns", "price", "size"))
        trades = [_trade_json(row) for row in chunk.iter_rows(named=True)]
        if self.body == "pulse":
            envelope = {
                "ts": trades[0]["ts_epoch"],
                "key": trades[0]["symbol"],
                "meta": {"schema_id": "models.Trade", "track": "v1", "headers": {}},
                "payload": _strip(trades[0]),
            }
            return json.dumps(envelope).encode()
        if len(trades) == 1:
            return json.dumps(_strip(trades[0])).encode()
        return json.dumps([_strip(t) for t in trades]).encode()


def _trade_json(row: dict[str, Any]) -> dict[str, Any]:
    from .frames import ns_to_datetime

    ts_ns = int(row["ts_ns"])
    iso = ns_to_datetime(ts_ns).isoformat().replace("+00:00", "Z")
    return {
        "symbol": row["symbol"],
        "price": repr(float(row["price"])),
        "size": int(row["size"]),
        "ts": iso,
        "exchange": None,
        "conditions": [],
        "ts_epoch": ts_ns / 1e9,
    }


def _strip(trade: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in trade.items() if k != "ts_epoch"}


async def publish_source(
    batches: AsyncIterator[pl.DataFrame],
    *,
    url: str,
    stream: str,
    prefix: str = DEFAULT_PREFIX,
    body: Body = "arrow",
    batch_ticks: int = DEFAULT_BATCH_TICKS,
    partitions: int | None = None,
    stop: Callable[[], str | None] | None = None,
) -> PublishReport:
    """Publish every frame of ``batches`` to ``stream`` (created when missing).

    ``stop`` is asked before each frame: once it names a reason (a signal), no further frame is
    published. What was sent is still waited for, so the report counts exactly the messages the
    stream acknowledged, and its ``stopped_by`` is the reason.
    """
    nc = await connect(url)
    try:
        js = nc.jetstream(publish_async_max_pending=_PENDING_ACKS)
        try:
            await ensure_stream(js, stream, prefix)
        except UsageError:
            raise
        except Exception as exc:  # JetStream disabled, no permission ...
            raise BusError(f"cannot create stream {stream} on {redact_url(url)}: {exc}") from None
        publisher = TickPublisher(
            js,
            stream=stream,
            prefix=prefix,
            body=body,
            batch_ticks=batch_ticks,
            partitions=partitions,
        )
        async for frame in batches:
            reason = stop() if stop is not None else None
            if reason is not None:
                publisher.report.stopped_by = reason
                break
            await publisher.write(frame)
        return await publisher.finish()
    finally:
        await nc.close()
