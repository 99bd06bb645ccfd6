"""Checkpoints: closed bars, open-window state and the source position, committed together.

A checkpointed run (``--source nats``) writes to a sink held in one open transaction. At a
frame boundary, every ``interval_s`` and as soon as closed bars wait while the source keeps up
with its feed (``flow.commit_policy``), the runtime waits until the write queue has handed every
closed bar to the sink, then ``commit`` stores the bar engine's open windows (with allowed
lateness, its retained closed windows too), watermarks and the last stream sequence taken in
table ``mdp_checkpoints`` and commits that transaction, and
only then acknowledges the messages up to that sequence. A process killed at any moment leaves
the store at its last checkpoint: the bars, the state and the position agree.

On start, ``restore`` loads the checkpoint named for the source (``nats:STREAM:DURABLE``, or
``replay:HASH`` for ``mdp run --input ... --resume``): the engine continues from the saved state
and the source resumes after the saved position (a stream sequence, or rows of a replay's
merged stream). A checkpoint made with another layout (resolutions, grace, windows, and for a
replay its input files and reading options) is refused: the state would not fit.

A replay read to its end stores its last checkpoint with position ``COMPLETE``, in the same
transaction as its last bars: resuming from it starts the replay from the beginning again, as a
plain re-run would (the writes are idempotent), instead of refusing a changed input.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from .errors import UsageError
from .flow.commit_policy import CommitPolicy

log = logging.getLogger(__name__)

TABLE = "mdp_checkpoints"
COMPLETE = -1  # the position of a replay read to its end: nothing left to resume


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


def layout_of(resolutions: list[str], grace_ns: int, extra: Mapping[str, Any] | None = None) -> str:
    """Return the description a checkpoint's state must match to be restored.

    ``extra`` adds what else the state depends on (a replay's input files and options, a
    non-default window layout); without it the description is the resolutions and grace alone.
    """
    layout: dict[str, Any] = {"resolutions": sorted(resolutions), "grace_ns": grace_ns}
    layout.update(extra or {})
    return json.dumps(layout, sort_keys=True)


def check_layout(checkpoint: Checkpoint, expected: str) -> None:
    """Refuse a checkpoint whose state was built with another layout, naming what differs."""
    if checkpoint.layout == expected:
        return
    saved, wanted = json.loads(checkpoint.layout), json.loads(expected)
    differs = sorted(
        key for key in saved.keys() | wanted.keys() if saved.get(key) != wanted.get(key)
    )
    if checkpoint.name.startswith("nats:"):
        advice = "or use another --durable"
    else:
        advice = (
            f"or delete it to start over (DELETE FROM {TABLE} WHERE name = '{checkpoint.name}')"
        )
    raise UsageError(
        f"checkpoint {checkpoint.name!r} was made with {_described(saved, differs)}, not "
        f"{_described(wanted, differs)}; run with the same --resolution and --grace (for a"
        f" replay, the same input files and reading options), {advice}"
    )


def _described(layout: Mapping[str, Any], keys: list[str]) -> str:
    parts = []
    for key in keys:
        value = layout.get(key)
        if key == "resolutions" and isinstance(value, list):
            parts.append(f"resolutions {','.join(value)}")
        elif key == "grace_ns" and isinstance(value, int):
            parts.append(f"grace {value // 1_000_000} ms")
        elif key == "inputs" and isinstance(value, list):
            parts.append("input " + ", ".join(_file(item) for item in value))
        else:
            parts.append(f"{key} {json.dumps(value, sort_keys=True)}")
    return "; ".join(parts)


def _file(item: Any) -> str:
    if isinstance(item, dict):
        return (
            f"{item.get('path')} ({item.get('bytes')} bytes, mtime_ns {item.get('mtime_ns')}, "
            f"ends {item.get('ends_sha256')})"
        )
    return str(item)


def _ipc(frame: pl.DataFrame) -> bytes:
    out = io.BytesIO()
    # A live run checkpoints several times a second: LZ4 makes the state of 5,000 symbols about
    # 150 kB instead of 1.3 MB for a millisecond more (checkpoints stored uncompressed still read).
    frame.write_ipc(out, compression="lz4")
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
        self.policy = CommitPolicy(interval_s)
        self.commits = 0
        self.restored_position: int | None = None
        self._bars_committed = 0  # the write queue's bars_written at the last commit

    async def restore(self) -> Checkpoint | None:
        """Load the saved checkpoint (None if none) and tell the source where to resume."""
        saved: Checkpoint | None = await self.sink.load_checkpoint(self.name)
        if saved is not None and saved.position == COMPLETE:
            log.info(
                "checkpoint %s is of a complete replay: starting from the beginning", self.name
            )
            saved = None
        if saved is not None:
            check_layout(saved, self.layout)
        position = saved.position if saved is not None else 0
        self.source.resume_after(position)
        self.restored_position = position
        return saved

    @property
    def restored(self) -> bool:
        """True once ``restore`` succeeded: only then may the run's state replace the saved one."""
        return self.restored_position is not None

    def due(self) -> bool:
        """True when a commit is due: ``interval_s`` has passed since the last one, or closed
        bars wait for one while the source keeps up with its feed (``flow.commit_policy``)."""
        waiting = self.queue.depth > 0 or self.queue.bars_written > self._bars_committed
        return self.policy.due(bars_waiting=waiting, live=self.source.caught_up)

    async def commit(self, engine: Any, *, complete: bool = False) -> None:
        """Commit bars, open state and position in one transaction, then acknowledge.

        ``complete``: the source was read to its end (a replay); the position stored is
        ``COMPLETE`` and nothing is acknowledged.

        A run that has taken nothing since the restore commits nothing: the saved checkpoint
        (or none) already says where it stands. So a run that never started (no such stream,
        a server that is down) leaves no checkpoint whose layout would refuse the next run.
        """
        if not complete and self.source.position == self.restored_position:
            return
        await self.queue.drain()
        started = time.monotonic()  # the bars' writes are not the commit's cost: they are due
        checkpoint = Checkpoint(
            name=self.name,
            position=COMPLETE if complete else self.source.position,
            open_state=engine.open_state(),
            watermarks=engine.watermarks(),
            layout=self.layout,
        )
        await self.sink.checkpoint(checkpoint)
        self.commits += 1
        self._bars_committed = self.queue.bars_written
        self.policy.committed(started)
        if not complete:
            await self.source.acknowledge(checkpoint.position)
