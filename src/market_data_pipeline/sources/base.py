"""The source interface: an async producer of tick (or bar) frames that is also a Core ``Source``.

The runtime pulls frames with ``batches()``; anything that wants Core models (another repository,
the contract suite) calls ``stream()``, which yields Core ``Trade``/``Quote``/``Bar`` objects built
from the same frames.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import polars as pl

from .. import frames

if TYPE_CHECKING:
    from ..core import Quote, Trade

TickKind = Literal["trades", "quotes", "bars"]


class SourceInfo(TypedDict, total=False):
    """What a source says about itself in the run report (``--json`` ``source``) and summary."""

    provider: str
    kind: str
    label: str  # one line for the summary, e.g. "replay trades from day1.csv"
    transactional: bool
    files: list[dict[str, Any]]  # per input file: path, rows, bad, duplicate (and late)
    symbols: list[str]
    seed: int
    checkpoint: str  # the checkpoint's name in the store (a checkpointed source)
    resumed_rows: int  # rows an earlier run committed, skipped by resuming (a replay)
    # A NATS JetStream source: where it reads, what it took and dead-lettered, its position.
    url: str
    stream: str
    subject: str
    durable: str
    messages: int
    dead_lettered: int
    dlq_subject: str
    position: int
    rebinds_after_lost_deliveries: int


class TickSource(ABC):
    """A producer of ``frames.TICK_SCHEMA`` frames (trades, quotes) or ``BAR_INPUT_SCHEMA`` (bars).

    ``provider`` names the rate gate that meters this source. ``bad_rows`` counts rows skipped
    with ``on_bad_row="skip"``; ``bad_reasons`` maps each reason to its count.

    A source describes itself, so the runtime and the CLI never branch on its class:
    ``transactional`` (the run writes in one store transaction, committed at the end: input that
    can be read again, so a failed run leaves nothing half-written), ``base_rate`` (the ticks/s
    the rate gate scales; None: unmetered) and ``describe()``.
    """

    provider: str
    kind: TickKind
    transactional: bool = False
    # Frames follow one another until the source ends (a file, a generator), so the bar engine
    # may hold a small frame for a few milliseconds to fold it in with the next ones. A source
    # that can go quiet (a live feed, a stream) leaves this False: a closing tick is folded in
    # at once, or its bar would wait for the next message.
    continuous: bool = False
    # Set when the run checkpoints this source (see ``checkpoint``): the row's name in the store.
    checkpoint_name: str | None = None
    # The input has an end a run can stop short of (files): a stop leaves rows not read.
    finite: bool = False

    @property
    def caught_up(self) -> bool:
        """True while the source keeps up with its feed (its frames come as the feed makes
        them: a paced replay, a consumer at the head of its stream), so a checkpointed run
        commits closed bars at once; False while it works through a backlog."""
        return not self.continuous

    @property
    def base_rate(self) -> float | None:
        """Ticks per second the rate gate starts from and scales (None: as fast as possible)."""
        return None

    def describe(self) -> SourceInfo:
        """Return what the run report says about this source."""
        return SourceInfo(
            provider=self.provider,
            kind=self.kind,
            label=f"{self.provider} {self.kind}",
            transactional=self.transactional,
        )

    def total_rows(self) -> int | None:
        """Rows of the whole input (None: not known, or no end, e.g. a live feed)."""
        return None

    def read_fraction(self, taken: int) -> float | None:
        """Share of the input's rows the run has taken, 0..1 (None: unknown).

        ``taken``: rows this run has taken from the source (processed, or bad).
        """
        total = self.total_rows()
        if total is None:
            return None
        return min(taken / total, 1.0) if total else 1.0

    def rows_not_read(self, taken: int) -> int | None:
        """Rows of the input the run did not take, given ``taken`` taken (None: unknown)."""
        total = self.total_rows()
        return None if total is None else max(total - taken, 0)

    def __init__(self, provider: str, kind: TickKind) -> None:
        self.provider = provider
        self.kind = kind
        self.bad_rows = 0
        self.bad_reasons: dict[str, int] = {}

    @abstractmethod
    def batches(self) -> AsyncIterator[pl.DataFrame]:
        """Yield frames in event-time order per source (out-of-order rows are allowed)."""

    async def stream(self) -> AsyncIterator[Trade | Quote]:
        """Yield Core ``Trade``/``Quote`` models one by one: Core's ``Source.stream``."""
        async for frame in self.batches():
            for item in frames.ticks_to_core(frame, self.kind):
                yield item

    def checkpoint_layout(self) -> dict[str, Any]:
        """Return what a checkpoint of this source depends on besides resolutions and grace."""
        return {}

    def resume_after(self, position: int) -> None:  # noqa: B027 - only checkpointed sources
        """Continue after ``position`` (of a committed checkpoint) instead of the beginning."""

    async def acknowledge(self, position: int) -> None:  # noqa: B027 - only checkpointed sources
        """Tell the origin that everything up to ``position`` is committed in the store."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most sources hold nothing
        """Release files or connections; safe to call more than once."""

    def count_bad(self, reason: str, rows: int = 1) -> None:
        """Count ``rows`` skipped rows under ``reason``."""
        self.bad_rows += rows
        self.bad_reasons[reason] = self.bad_reasons.get(reason, 0) + rows
