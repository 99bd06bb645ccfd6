"""The event loop a run gets: uvloop's for NATS work when it is installed, asyncio's else.

A NATS worker's event loop does the client's work for every message (nats-py reads, parses and
queues each one in Python) while the bar engine runs in a worker thread beside it: that loop is
the worker's critical path, and uvloop's socket reads and callbacks in C cut its CPU by about a
sixth (``bench/bench_nats.py``); ``mdp publish`` is the same client's work the other way.
Other sources leave the loop mostly idle, so they keep asyncio's own loop and its one less
moving part.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory(source: str | None) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Return uvloop's loop factory for a NATS run when uvloop is installed, else None
    (asyncio's default loop)."""
    if source != "nats":
        return None
    try:
        import uvloop
    except ImportError:  # not on Windows, or installed without the nats extra
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], *, source: str | None) -> T:
    """``asyncio.run(main)`` on the loop ``loop_factory(source)`` chooses."""
    with asyncio.Runner(loop_factory=loop_factory(source)) as runner:
        return runner.run(main)
