"""When a checkpointed run commits: soon after a window closes, and at least every interval.

A checkpoint commits the closed bars, the open windows and the source position in one
transaction (``checkpoint.py``); a bar is readable in the store only from that commit on. A
fixed interval makes a live bar wait up to the interval after its window closed. So a commit is
also due as soon as closed bars wait for one while the source is caught up with its feed (a
live stream, a paced replay): bars become readable within one frame of their window's close.

Commits are coalesced so that they take about ``COST_SHARE`` of the time at most: with commits
that took ``c`` seconds (the median of the last ``COSTS_KEPT``: the snapshot of the open windows
and the commit itself; the bars' writes are due anyway), the next one closed bars trigger waits
until ``c / COST_SHARE`` has passed since the last, from ``MIN_GAP_S`` to ``MAX_GAP_S``. The
median: one commit stalled by a busy disk must not hold the next bars back five times as long.
The cap: a source that keeps up has time to spare; should commits make it fall behind, it is
no longer caught up and commits every interval only.

A source working through a backlog (a consumer behind its stream, an unpaced replay) commits
every ``interval_s`` only: its bars are not live, and each commit waits for the write queue to
empty, which stalls the bar engine meanwhile.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable

# A commit costs a wait for the writer, a snapshot of the open windows and a synced commit: at
# most this share of the run's time goes to commits triggered by closed windows.
COST_SHARE = 0.2
MIN_GAP_S = 0.005
MAX_GAP_S = 0.1  # closed bars wait at most this long behind the last commit
COSTS_KEPT = 5


class CommitPolicy:
    """Say when a checkpoint is due (see the module docstring); ``interval_s`` bounds the wait."""

    def __init__(self, interval_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last = clock()
        self._costs: deque[float] = deque(maxlen=COSTS_KEPT)  # of the last commits

    def due(self, *, bars_waiting: bool, live: bool) -> bool:
        """True when a commit is due now: the interval is up, or closed bars wait for one while
        the source is live and the last commit is far enough behind."""
        since = self._clock() - self._last
        if since >= self.interval_s:
            return True
        return bars_waiting and live and since >= self.gap_s()

    def gap_s(self) -> float:
        """The least time between two commits that closed windows trigger."""
        cost = statistics.median(self._costs) if self._costs else 0.0
        return min(self.interval_s, MAX_GAP_S, max(MIN_GAP_S, cost / COST_SHARE))

    def committed(self, started: float) -> None:
        """Note a commit that began at ``started`` (on the policy's clock) and ended now."""
        self._last = self._clock()
        self._costs.append(self._last - started)
