"""The states a pipeline and its write queue go through, in this order only."""

from __future__ import annotations

from enum import StrEnum


class Lifecycle(StrEnum):
    """Where a pipeline (or its write queue) is in its life; it only moves forward."""

    CREATED = "created"  # built: nothing opened yet
    RUNNING = "running"  # started: the sink is open, the writer and the feedback loop run
    CLOSING = "closing"  # finishing: what is queued is written, the sink commits or rolls back
    CLOSED = "closed"  # everything closed; the report is final
