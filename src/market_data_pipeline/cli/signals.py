"""SIGINT and SIGTERM as requests, never as exceptions.

Python turns SIGINT into ``KeyboardInterrupt`` wherever the main thread happens to be (inside
polars, halfway through the write queue's bookkeeping), and ``asyncio`` puts that default handler
back whenever one of its own is removed. Polars goes further: importing it puts its own SIGINT
hook in front of Python's (chained to it), which aborts whichever polars query is running, in
any thread, with ``KeyboardInterrupt`` (a group-by in the bar engine, a concat in the write
queue). So the ``mdp`` entry point installs plain handlers before the CLI loads, ``mdp run``
puts them back in front once polars and the rest are imported (``reassert``), and keeps them
until its summary is printed: a signal is recorded and, once a pipeline runs, handed to it
(``request_stop``) through its event loop.
Whatever the instant, a run ends the one way, through the same summary, and exits
``128 + signal number`` (130 for SIGINT, 143 for SIGTERM); a signal after the summary changes
nothing. A second signal gives up retrying a store that is down. Other commands get the default
handlers back as soon as they are chosen.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # asyncio costs a usage error or --help about 25 ms to import
    import asyncio

HANDLED = (signal.SIGINT, signal.SIGTERM)
EXIT_CODES = {sig.name: 128 + int(sig) for sig in HANDLED}  # SIGINT 130, SIGTERM 143


class StopSignals:
    """Record SIGINT/SIGTERM and forward them to a stop callback on an event loop."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: Callable[[str], None] | None = None

    @property
    def installed(self) -> bool:
        """True while this object's handlers are in place."""
        return bool(self._previous)

    def install(self) -> None:
        """Put the recording handlers in place (main thread only; a second call does nothing)."""
        if self.installed or threading.current_thread() is not threading.main_thread():
            return  # only the main thread may set handlers; an embedding app owns them
        for sig in HANDLED:
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def reassert(self) -> None:
        """Put the handlers back in front of any a library installed since ``install``.

        ``signal.signal`` sets the process's handler even when Python believes it is already
        in place, so a hook a native library registered meanwhile (polars') is replaced.
        """
        if not self.installed or threading.current_thread() is not threading.main_thread():
            return
        for sig in HANDLED:
            signal.signal(sig, self._on_signal)

    def uninstall(self) -> None:
        """Give back the handlers that were in place before ``install``."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
        self.detach()

    @contextmanager
    def held(self) -> Iterator[StopSignals]:
        """Keep the handlers in place for the block, then forget the signal.

        Handlers the entry point installed stay until the process exits: a signal after the
        summary is printed must not kill the process and change its exit code. Handlers
        installed here (``mdp`` called in-process) are restored.
        """
        installed_before = self.installed
        self.install()
        try:
            yield self
        finally:
            if installed_before:
                self.detach()
            else:
                self.uninstall()
            self.received = None

    def forward_to(self, loop: asyncio.AbstractEventLoop, stop: Callable[[str], None]) -> None:
        """Send signals (one already received too) to ``stop`` on ``loop`` from now on."""
        self._loop, self._stop = loop, stop
        if self.received is not None:
            loop.call_soon(stop, self.received)

    def detach(self) -> None:
        """Stop forwarding (the loop is about to end); signals are still recorded."""
        self._loop = self._stop = None

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.received is None:
            self.received = name
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            # Safe from a signal handler: it only writes to the loop's wake-up pipe.
            loop.call_soon_threadsafe(stop, name)


STOP = StopSignals()  # the process's one set of handlers (signals are process-wide)


# Commands that stop cleanly on a signal: they end at a boundary, report what they did and exit
# with the signal's code. Every other command gets Python's defaults back.
STOPPABLE = ("run", "publish")


def release_for(command: str | None) -> None:
    """Hand signals back to Python's defaults unless ``command`` stops cleanly (``STOPPABLE``).

    A signal that came while the CLI loaded ends any other command at once.
    """
    if command in STOPPABLE or not STOP.installed:
        return
    received = STOP.received
    STOP.uninstall()
    STOP.received = None
    if received is not None:
        raise SystemExit(EXIT_CODES[received])
