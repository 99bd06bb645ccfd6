"""Checkpoints: closed bars, open-window state and the source position, committed together.

A checkpointed run (``--source nats``) writes to a sink held in one open transaction. Every
``interval_s``, at a frame boundary, the runtime waits until the write queue has handed every
closed bar to the sink, then ``commit`` stores the bar engine's open windows and watermarks and
the last stream sequence taken in table ``mdp_checkpoints`` and commits that transaction, and
only then acknowledges the messages up to that sequence. A process killed at any moment leaves
the store at its last checkpoint: the bars, the state and the position agree.

On start, ``restore`` loads the checkpoint named for the source (``nats:STREAM:DURABLE``): the
engine continues from the saved state and the source resumes after the saved sequence. A
checkpoint made with other resolutions or grace is refused (the state would not fit).
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from typing import Any

import polars as pl

from .errors import UsageError

TABLE = "mdp_checkpoints"


@dataclass(frozen=True)
class Checkpoint:
    """One committed checkpoint; ``layout`` names the resolutions and grace it was built with."""

    name: str
    position: int
    open_state: pl.DataFrame
    watermarks: pl.DataFrame
    layout: str

    def to_row(self) -> tuple[str, int, bytes, bytes, str]:
        """Return the row stored in ``mdp_checkpoints`` (state frames as Arrow IPC)."""
        return (self.name, self.position, _ipc(self.open_state), _ipc(self.watermarks), self.layout)

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Checkpoint:
        """Rebuild a checkpoint from its stored row."""
        name, position, state, marks, layout = row
        return cls(
            name=str(name),
            position=int(position),
            open_state=pl.read_ipc(io.BytesIO(bytes(state))),
            watermarks=pl.read_ipc(io.BytesIO(bytes(marks))),
            layout=str(layout),
        )


def layout_of(resolutions: list[str], grace_ns: int) -> str:
    """Return the description a checkpoint's state must match to be restored."""
    return json.dumps({"resolutions": sorted(resolutions), "grace_ns": grace_ns}, sort_keys=True)


def check_layout(checkpoint: Checkpoint, expected: str) -> None:
    """Refuse a checkpoint whose state was built with other resolutions or grace."""
    if checkpoint.layout != expected:
        saved = json.loads(checkpoint.layout)
        raise UsageError(
            f"checkpoint {checkpoint.name!r} was made with resolutions "
            f"{','.join(saved['resolutions'])} and grace {saved['grace_ns'] // 1_000_000} ms; "
            "run with the same --resolution and --grace, or use another --durable"
        )


def _ipc(frame: pl.DataFrame) -> bytes:
    out = io.BytesIO()
    frame.write_ipc(out, compression="uncompressed")
    return out.getvalue()


class Checkpointer:
    """Commit and restore the checkpoint of one checkpointed source (see the module docstring)."""

    def __init__(self, sink: Any, queue: Any, source: Any, layout: str, interval_s: float) -> None:
        self.sink = sink
        self.queue = queue
        self.source = source
        self.name: str = source.checkpoint_name
        self.layout = layout
        self.interval_s = interval_s
        self.commits = 0
        self.restored_position: int | None = None
        self._last_commit = time.monotonic()

    async def restore(self) -> Checkpoint | None:
        """Load the saved checkpoint (None if none) and tell the source where to resume."""
        saved: Checkpoint | None = await self.sink.load_checkpoint(self.name)
        if saved is not None:
            check_layout(saved, self.layout)
        position = saved.position if saved is not None else 0
        self.source.resume_after(position)
        self.restored_position = position
        return saved

    def due(self) -> bool:
        """True when ``interval_s`` has passed since the last commit."""
        return time.monotonic() - self._last_commit >= self.interval_s

    async def commit(self, engine: Any) -> None:
        """Commit bars, open state and position in one transaction, then acknowledge."""
        await self.queue.drain()
        checkpoint = Checkpoint(
            name=self.name,
            position=self.source.position,
            open_state=engine.open_state(),
            watermarks=engine.watermarks(),
            layout=self.layout,
        )
        await self.sink.checkpoint(checkpoint)
        self.commits += 1
        self._last_commit = time.monotonic()
        await self.source.acknowledge(checkpoint.position)
