"""Ticks from a NATS JetStream stream, through a durable pull consumer, in batches.

Each fetch (``pull.Puller``: JetStream's pull requests, answered on one subscription) takes up
to ``fetch_batch`` messages (fewer when they are large, see ``FETCH_BYTES``); their bodies are
decoded one by one (``nats_bodies``: Arrow IPC, Core Trade/Quote JSON, a Pulse envelope of one,
a JSON array) and concatenated into one tick frame. A message that is none of these is published
to the dead-letter subject (default ``mdp.dlq.<stream>``, captured by the stream
``<stream>_DLQ``, which is created when missing) with the reason, the stream sequence and the
subject in headers, and is counted under ``dead-lettered: <reason>``; the consumer keeps going.

Acknowledgement is cumulative (``AckPolicy.ALL``) and happens only when the runtime says the
ticks up to a stream sequence are safe (``acknowledge``): after the store committed them, with
the checkpoint, so a crash never acknowledges anything the store does not hold. ``resume_after``
makes the consumer start right after a committed sequence: the durable consumer is recreated at
that position, so the server delivers every later message in stream order, and any redelivery
of a message already taken (a stalled ack) is recognised by its sequence and skipped. Deliveries
that never arrive (a cluster node dying with them in flight) show as a jump in the consumer's
delivery numbers: the batch is cut there and the consumer is recreated after the last message
taken, so a later cumulative ack never covers a message this process did not see.

A reader task fetches up to two batches ahead while the runtime handles the last one, and no
further: a paused rate gate (hard backpressure) therefore pauses fetching after two batches.
``idle_timeout_s`` ends the stream after that long without a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

import polars as pl

from ...defaults import DEFAULT_FETCH_BATCH, DEFAULT_NATS_URL
from ...errors import BusError, UsageError
from ...extras import require_extra
from ...urls import redact_url
from ..base import SourceInfo, TickSource
from .bodies import Decoded, PoisonMessageError, decode_messages
from .pull import Puller

log = logging.getLogger(__name__)

# A fetch asks for at most about this many bytes of messages, by the mean size of the last
# fetch's. A fetch that times out leaves the rest of its request in flight, and the next one
# asks again: the server cuts a client off once more than its max_pending (64 MiB by default)
# waits to be sent to it, and nats-py drops what a subscription holds past 256 MiB, so three
# requests in flight must stay below both. Smaller fetches also let the bar engine start on a
# batch sooner. The first fetch, of sizes unknown, takes at most FIRST_FETCH messages.
FETCH_BYTES = 16 * 2**20
FIRST_FETCH = 64
DEFAULT_ACK_WAIT_S = 60.0
# Messages delivered but not yet acknowledged: a checkpoint interval's worth at high rates.
MAX_ACK_PENDING = 200_000
_FETCH_WAIT_S = 1.0
# At the head of the stream a fetch of many messages would wait for all of them, up to
# _FETCH_WAIT_S, before returning the first. There the reader sweeps up what has come, waiting at
# most SWEEP_S for more, and after a sweep that found nothing waits for one message (returned
# as it comes).
SWEEP_S = 0.005
# Fetches taken ahead of the caller. The bar engine's thread and the event loop share Python's
# lock, so a batch now and then takes the engine longer than a fetch; with two ahead the reader
# keeps fetching through it (bench_nats: about a tenth faster than one). More would only hold
# more unacknowledged messages (16 MiB a fetch) while a hard pause stops the caller.
READ_AHEAD = 2
CONNECT_TIMEOUT_S = 5.0
# A stop waits this long at most for the reader task to end, cancelling it again every
# _RECANCEL_S; closing the connection waits CLOSE_S at most.
STOP_READER_S = 3.0
_RECANCEL_S = 0.05
CLOSE_S = 2.0
DLQ_PUBLISH_TIMEOUT_S = 5.0


def dlq_subject_for(stream: str) -> str:
    """Return the default dead-letter subject of ``stream``."""
    return f"mdp.dlq.{stream}"


_Taken = list[tuple[int, Any]]  # (stream seq, message) of one fetch, new to this process


@dataclass(frozen=True)
class _Fetched:
    """A fetch's messages new to this process, and their decoding (under way or done)."""

    taken: _Taken
    decoded: asyncio.Future[Decoded]


class NatsSource(TickSource):
    """Consume tick messages of ``stream`` (optionally only ``subject``) as durable ``durable``."""

    def __init__(
        self,
        *,
        url: str = DEFAULT_NATS_URL,
        stream: str,
        subject: str | None = None,
        durable: str = "mdp",
        fetch_batch: int = DEFAULT_FETCH_BATCH,
        idle_timeout_s: float | None = None,
        dlq_subject: str | None = None,
        provider: str = "nats",
    ) -> None:
        require_extra("nats", "--source nats")
        # The client loads with the source, as the run starts, not inside its first fetch.
        import nats.js.api  # noqa: F401

        if not stream or not durable:
            raise UsageError("--source nats needs --stream NAME and a --durable name")
        if any(c in durable for c in " .*>"):
            raise UsageError(f"bad --durable {durable!r}: no spaces, dots, '*' or '>'")
        if fetch_batch < 1:
            raise UsageError(f"fetch batch must be >= 1, not {fetch_batch}")
        if idle_timeout_s is not None and not idle_timeout_s > 0:
            raise UsageError(f"--idle-timeout must be > 0, not {idle_timeout_s}")
        super().__init__(provider, "trades")
        self.checkpoint_name = f"nats:{stream}:{durable}"  # one checkpoint per consumer
        self.url = url
        self.stream_name = stream
        self.subject = subject
        self.durable = durable
        self.fetch_batch = fetch_batch
        self.idle_timeout_s = idle_timeout_s
        self.dlq_subject = dlq_subject or dlq_subject_for(stream)
        self.position = 0  # stream sequence of the last message in the frames yielded so far
        self._fetched_to = 0  # ... and in the batches fetched so far (read ahead of position)
        self._reader: asyncio.Task[None] | None = None
        self._ready: asyncio.Queue[_Fetched | BaseException | None] | None = None
        self._decoder: ThreadPoolExecutor | None = None
        self.messages = 0
        self.dead_letters = 0
        self._start_after: int | None = None
        self._nc: Any = None
        self._js: Any = None
        self._sub: Any = None  # a Puller once bound
        # (stream seq, message) of the last message of each batch taken and not acknowledged:
        # checkpoints fall between batches, and one cumulative ack covers a whole batch. The
        # other messages, bodies and all, are let go as soon as they are decoded: held until
        # the next checkpoint they were a second of the stream in memory.
        self._unacked: list[tuple[int, Any]] = []
        self._body_bytes = 0  # mean size of the last fetch's messages (0: none fetched yet)
        self._live = False  # the last fetch came short at the head of the stream (see _fetch)
        self._got_any = False  # ... and it found some
        self._near_head = False  # ... and fewer remained behind its last message than it took
        self._delivered: int | None = None  # the consumer's delivery number of the last message
        self._gap_after: int | None = None  # set: deliveries were lost, rebind after this seq
        self.gaps = 0  # times the consumer was rebound after lost deliveries

    def describe(self) -> SourceInfo:
        """Return what the run summary shows about this source."""
        info: dict[str, Any] = dict(super().describe())
        info["label"] = f"nats {self.stream_name} ({self.subject or 'all subjects'})"
        info.update(
            url=redact_url(self.url),
            stream=self.stream_name,
            subject=self.subject or "(all)",
            durable=self.durable,
            messages=self.messages,
            dead_lettered=self.dead_letters,
            dlq_subject=self.dlq_subject,
            position=self.position,
            rebinds_after_lost_deliveries=self.gaps,
        )
        return cast(SourceInfo, info)

    @property
    def caught_up(self) -> bool:
        """True while the consumer is at the head of the stream: its last fetch came short and
        fewer messages were pending behind it than it took."""
        return self._live and self._near_head

    def resume_after(self, stream_seq: int) -> None:
        """Start after ``stream_seq`` (a committed checkpoint) instead of the consumer's floor."""
        self._start_after = stream_seq
        self.position = self._fetched_to = stream_seq

    # -- the stream ---------------------------------------------------------------------------
    async def batches(self) -> AsyncIterator[pl.DataFrame]:
        """Yield one tick frame per fetch that held new ticks; end after the idle timeout.

        A reader task fetches the next batch while the caller handles this one (``READ_AHEAD``
        fetches at most); a batch is decoded, in a worker thread, when it is taken. The stream
        position, the messages to acknowledge and the dead letters move only then, so a
        checkpoint taken between frames never covers ticks still in the reader's hands.
        """
        await self._connect()
        ready: asyncio.Queue[_Fetched | BaseException | None] = asyncio.Queue()
        wanted = asyncio.Semaphore(READ_AHEAD)
        self._ready = ready
        # One thread: batches are decoded one at a time, in the order fetched, beside the
        # bar engine's thread rather than competing with each other for the cores.
        self._decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nats-decode")
        self._reader = asyncio.create_task(self._read_ahead(ready, wanted), name="nats-reader")
        try:
            while True:
                item = await ready.get()
                wanted.release()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                frame = await self._take(item)
                if frame.height:
                    yield frame
        finally:
            await self._stop_reader()

    async def _read_ahead(
        self, ready: asyncio.Queue[_Fetched | BaseException | None], wanted: asyncio.Semaphore
    ) -> None:
        try:
            while True:
                await wanted.acquire()
                taken = await self._next_fetch()
                if taken is None:
                    ready.put_nowait(None)
                    return
                ready.put_nowait(self._fetched(taken))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to the caller, which raises it
            ready.put_nowait(exc)

    async def _next_fetch(self) -> _Taken | None:
        """Fetch until some message is new to this process; ``None`` after the idle timeout."""
        last_message = time.monotonic()
        while True:
            wait_s = _FETCH_WAIT_S
            if self.idle_timeout_s is not None:
                left = self.idle_timeout_s - (time.monotonic() - last_message)
                if left <= 0:
                    return None
                wait_s = min(wait_s, max(left, 0.05))
            if self._gap_after is not None:
                await self._rebind()
            msgs = await self._fetch(wait_s)
            if not msgs:
                continue
            last_message = time.monotonic()
            taken = self._select(msgs)
            if taken:
                return taken

    async def _fetch(self, wait_s: float) -> list[Any]:
        import nats.errors

        count = self._fetch_count()
        if self._live:  # at the head of the stream: sweeps, or a wait for one message
            count, wait_s = (count, SWEEP_S) if self._got_any else (1, wait_s)
        try:
            msgs: list[Any] = await self._sub.fetch(count, timeout=wait_s)
        except nats.errors.Error as exc:
            raise BusError(f"fetching from {self._where()} failed: {exc}") from None
        self._got_any = bool(msgs)
        self._near_head = not msgs or _pending(msgs[-1]) <= len(msgs)
        # A fetch that came short with a backlog behind it timed out (a slow machine), it did
        # not reach the head: sweeping there would pile up requests for the whole backlog.
        self._live = (len(msgs) < count and self._near_head) or (self._live and count == 1)
        if msgs:
            self._body_bytes = max(1, sum(len(msg.data) for msg in msgs) // len(msgs))
        return msgs

    def _fetch_count(self) -> int:
        """Messages to ask for: ``fetch_batch``, fewer when they are large (``FETCH_BYTES``)."""
        if not self._body_bytes:
            return min(self.fetch_batch, FIRST_FETCH)
        return max(1, min(self.fetch_batch, FETCH_BYTES // self._body_bytes))

    def _select(self, msgs: list[Any]) -> _Taken:
        """Return (stream seq, message) of the messages not taken before, up to a lost delivery."""
        fresh = []
        for msg in msgs:
            seq, delivered = _sequences(msg)
            if self._lost_before(delivered):
                break  # the rest comes again once the consumer is rebound (see _rebind)
            if seq <= self._fetched_to:
                continue  # a redelivery of a message already taken: its ticks are counted
            self._fetched_to = seq
            fresh.append((seq, msg))
        return fresh

    def _fetched(self, taken: _Taken) -> _Fetched:
        """Start decoding ``taken`` on the decoding thread (pure work: nothing moves yet)."""
        bodies = [msg.data for _, msg in taken]
        loop = asyncio.get_running_loop()
        return _Fetched(taken, loop.run_in_executor(self._decoder, decode_messages, bodies))

    async def _take(self, fetched: _Fetched) -> pl.DataFrame:
        """Make a fetched batch this process's own once decoded: dead letters, then position
        and acknowledgement. Batches are decoded on a thread of their own as they are fetched,
        so the next one is decoded while the bar engine takes this one.

        The position moves only once every poison message of the batch is in the dead-letter
        stream: a dead letter that cannot be written (or a stop in the middle) leaves the batch
        untaken, so no checkpoint passes it and the next run takes it again. (A dead letter
        written twice that way is deduplicated by its ``Nats-Msg-Id``.)
        """
        taken = fetched.taken
        decoded = await fetched.decoded
        for index, exc in decoded.poison.items():
            seq, msg = taken[index]
            await self._dead_letter(msg, seq, exc)
        self._unacked.append(taken[-1])
        self.position = taken[-1][0]
        self.messages += len(taken)
        for exc in decoded.poison.values():
            self.dead_letters += 1
            self.count_bad(f"dead-lettered: {exc.category}")
        return decoded.frame

    async def _stop_reader(self) -> None:
        """End the reader task within ``STOP_READER_S`` whatever it awaits.

        A cancellation can be lost inside the client (``asyncio.wait_for`` in Python 3.11
        drops one that comes as its inner call completes): the reader then carries on to
        wait for the next batch to be wanted, which never comes. So the reader is cancelled
        again until it ends; past the bound it is left to end with the connection. A caller
        waiting for the next batch (a ``close`` from elsewhere) is told the stream ended.
        """
        reader, self._reader = self._reader, None
        if reader is not None:
            await self._cancel(reader)
        decoder, self._decoder = self._decoder, None
        if decoder is not None:  # its thread ends when the batch it may be decoding is done
            decoder.shutdown(wait=False, cancel_futures=True)

    async def _cancel(self, reader: asyncio.Task[None]) -> None:
        if self._ready is not None:
            self._ready.put_nowait(None)
        deadline = time.monotonic() + STOP_READER_S
        while not reader.done() and time.monotonic() < deadline:
            reader.cancel()
            await asyncio.wait({reader}, timeout=_RECANCEL_S)
        if not reader.done():
            log.warning("the reader of %s did not stop; closing the connection", self._where())
        elif not reader.cancelled():
            reader.exception()  # retrieved: what it raised was handed to the caller already

    def _lost_before(self, delivered: int) -> bool:
        """True when deliveries before ``delivered`` never reached this process.

        The consumer numbers its deliveries 1, 2, 3 ... (redeliveries included). A jump means
        messages were delivered and lost on the way (a node of the cluster died with them in
        flight, or another process fetched from the same durable): acknowledging anything
        later would acknowledge them too (AckPolicy.ALL), and their redelivery would come
        after this process had passed them. So the batch is cut at the jump and the consumer is
        rebound right after the last message taken before the next fetch.
        """
        last, self._delivered = self._delivered, delivered
        if last is None or delivered <= last + 1:
            return False  # in order, or a new leader numbering again from its own state
        log.warning(
            "deliveries %d-%d of %s never arrived: resuming after stream sequence %d",
            last + 1,
            delivered - 1,
            self._where(),
            self._fetched_to,
        )
        self._gap_after = self._fetched_to
        return True

    async def _rebind(self) -> None:
        """Recreate the durable consumer right after the last message taken (after lost
        deliveries); messages taken and not yet yielded are yielded as fetched."""
        self.gaps += 1
        self._start_after, self._gap_after, self._delivered = self._fetched_to, None, None
        old, self._sub = self._sub, None
        if old is not None:
            await old.unsubscribe()
        await self._bind()

    async def _dead_letter(self, msg: Any, seq: int, exc: PoisonMessageError) -> None:
        """Publish ``msg`` to the dead-letter subject with its own headers and the reason;
        raise ``BusError`` when it cannot be written (the caller stops before the message)."""
        headers = _kept_headers(msg.headers)
        headers.update(
            {
                "Mdp-Dlq-Reason": str(exc),
                "Mdp-Dlq-Stream": self.stream_name,
                "Mdp-Dlq-Stream-Seq": str(seq),
                "Mdp-Dlq-Subject": msg.subject,
                # The same poison message dead-lettered again after a restart is deduplicated.
                "Nats-Msg-Id": f"{self.stream_name}:{seq}",
            }
        )
        try:
            self._check_payload(msg.data, headers)
            await self._js.publish(
                self.dlq_subject, msg.data, headers=headers, timeout=DLQ_PUBLISH_TIMEOUT_S
            )
        except Exception as exc2:  # any failure here must stop the run loudly
            detail = str(exc2) or type(exc2).__name__
            raise BusError(
                f"cannot dead-letter message {seq} ({len(msg.data):,} bytes, {exc.category}) "
                f"of {self._where()} to {self.dlq_subject}: {detail}; stopped before it, so the"
                " next run takes it again once the dead-letter stream can hold it"
            ) from None

    def _check_payload(self, data: bytes, headers: dict[str, str]) -> None:
        """Raise when the dead letter is larger than the server takes (its ``max_payload``):
        the server would drop the connection and the publish time out, saying nothing."""
        limit = getattr(self._nc, "max_payload", 0)
        size = len(data) + sum(len(k) + len(v) + 4 for k, v in headers.items()) + 14
        if isinstance(limit, int) and 0 < limit < size:
            raise BusError(
                f"with its headers it is {size:,} bytes, past the server's max_payload of "
                f"{limit:,}: raise max_payload in the server's configuration"
            )

    # -- acknowledgement ------------------------------------------------------------------------
    async def acknowledge(self, stream_seq: int) -> None:
        """Acknowledge every message up to ``stream_seq`` (one cumulative ack)."""
        cut = _first_above(self._unacked, stream_seq)
        last = self._unacked[cut - 1][1] if cut else None
        del self._unacked[:cut]
        if last is not None:
            try:
                await last.ack()
            except Exception as exc:  # the next ack covers it (AckPolicy.ALL)
                log.warning(
                    "acknowledging up to %d on %s failed: %s", stream_seq, self._where(), exc
                )

    # -- connection -----------------------------------------------------------------------------
    async def _connect(self) -> None:
        if self._sub is not None:
            return
        self._nc = await connect(self.url)
        self._js = self._nc.jetstream()
        await self._check_stream()
        await ensure_dlq_stream(self._js, self.stream_name, self.dlq_subject)
        await self._bind()

    async def _check_stream(self) -> None:
        import nats.js.errors

        try:
            await self._js.stream_info(self.stream_name)
        except nats.js.errors.NotFoundError:
            raise UsageError(
                f"no stream {self.stream_name!r} on {redact_url(self.url)}: create it with "
                f"mdp publish --stream {self.stream_name}"
            ) from None

    async def _bind(self) -> None:
        import nats.js.api as api
        import nats.js.errors

        config = api.ConsumerConfig(
            durable_name=self.durable,
            ack_policy=api.AckPolicy.ALL,
            ack_wait=DEFAULT_ACK_WAIT_S,
            max_ack_pending=MAX_ACK_PENDING,
            filter_subject=self.subject,
            max_deliver=-1,
        )
        recreated = self._start_after is not None
        if self._start_after is not None:
            config.deliver_policy = api.DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = self._start_after + 1
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self._js.delete_consumer(self.stream_name, self.durable)
        try:
            await self._js.add_consumer(self.stream_name, config)
        except nats.js.errors.BadRequestError as exc:
            # The durable exists with another configuration (e.g. a different --subject).
            raise UsageError(
                f"durable {self.durable!r} on stream {self.stream_name!r} cannot be used: "
                f"{exc.description}"
            ) from None
        self._sub = Puller(self._nc, self.stream_name, self.durable)
        await self._sub.start()
        # A new consumer numbers its deliveries from 1: a first message numbered higher means
        # the deliveries before it were lost on the way, as any later jump does.
        self._delivered = 0 if recreated else None

    def _where(self) -> str:
        return f"stream {self.stream_name} on {redact_url(self.url)}"

    async def close(self) -> None:
        """Disconnect (unacknowledged messages are redelivered to the next consumer), within
        ``STOP_READER_S + CLOSE_S`` whatever the reader or the server does."""
        await self._stop_reader()
        nc, self._nc, self._sub = self._nc, None, None
        if nc is not None:
            closing = asyncio.ensure_future(nc.close())
            await asyncio.wait({closing}, timeout=CLOSE_S)
            if not closing.done():
                closing.cancel()
            elif not closing.cancelled():
                closing.exception()  # a failed close leaves nothing to undo


def _kept_headers(original: dict[str, str] | None) -> dict[str, str]:
    """The headers of a poison message as its dead letter carries them: its own, with those the
    server acts on (``Nats-*``: deduplication, expected sequences, rollups, TTLs) renamed
    ``Mdp-Dlq-Original-Nats-*`` so that they are kept without acting on the dead-letter stream."""
    kept: dict[str, str] = {}
    for name, value in (original or {}).items():
        server_side = name.lower().startswith("nats-")
        kept[f"Mdp-Dlq-Original-{name}" if server_side else name] = value
    return kept


def _sequences(msg: Any) -> tuple[int, int]:
    """Return (stream seq, consumer delivery seq) of a JetStream message.

    Read from the reply subject (ADR-15: ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream
    seq>.<consumer seq>.<time>.<pending>``, or with domain and account hash before the stream),
    as nats-py's ``metadata`` does; it also builds a datetime and two objects per message,
    which cost more than the rest of taking a message in.
    """
    tokens = msg.reply.split(".") if msg.reply else []
    if tokens[:2] == ["$JS", "ACK"]:
        if len(tokens) == 9:
            return int(tokens[5]), int(tokens[6])
        if len(tokens) >= 11:
            return int(tokens[7]), int(tokens[8])
    sequence = msg.metadata.sequence  # anything else: nats-py's parser (or its error)
    return int(sequence.stream), int(sequence.consumer)


def _pending(msg: Any) -> int:
    """Return how many messages the consumer had pending past ``msg`` when it delivered it (the
    last token of the ack subject, see ``_sequences``; 0 when there is none)."""
    tokens = msg.reply.split(".") if getattr(msg, "reply", None) else []
    if tokens[:2] == ["$JS", "ACK"] and len(tokens) in (9, 11, 12):
        return int(tokens[8 if len(tokens) == 9 else 10])
    return 0


def _first_above(items: list[tuple[int, Any]], seq: int) -> int:
    lo, hi = 0, len(items)
    while lo < hi:
        mid = (lo + hi) // 2
        if items[mid][0] <= seq:
            lo = mid + 1
        else:
            hi = mid
    return lo


async def connect(url: str) -> Any:
    """Connect to NATS or raise ``BusError`` in one line (one retry, password masked).

    ``url`` may list several servers of a cluster, comma-separated
    (``nats://a:4222,nats://b:4222``): the client connects to one and, when it goes away,
    reconnects to another.
    """
    import nats

    servers = [part.strip() for part in url.split(",") if part.strip()]
    errors: list[Exception] = []

    async def _record(exc: Exception) -> None:
        errors.append(exc)

    try:
        return await nats.connect(
            servers,
            connect_timeout=CONNECT_TIMEOUT_S,
            max_reconnect_attempts=1,  # nats-py loops forever on a refused first connect with 0
            reconnect_time_wait=0.2,
            error_cb=_record,
        )
    except Exception as exc:  # nats-py raises OSError, its own errors, timeouts
        cause = errors[-1] if errors else exc
        detail = str(cause) or type(cause).__name__
        raise BusError(f"cannot connect to NATS at {redact_url(url)}: {detail}") from None


async def ensure_dlq_stream(js: Any, stream: str, dlq_subject: str) -> None:
    """Create the stream that keeps dead letters (``<stream>_DLQ``) unless one captures them."""
    import nats.js.errors

    try:
        await js.find_stream_name_by_subject(dlq_subject)
        return
    except nats.js.errors.NotFoundError:
        pass
    await js.add_stream(name=f"{stream}_DLQ", subjects=[dlq_subject])
