"""Garbage collection held off while ``mdp`` starts, then resumed for the command's work.

Start-up allocates about 100,000 objects (Core's pydantic models, polars, typer, the pipeline's
modules) that all live until the process exits. CPython collects as objects are allocated, so
the imports alone set off some 230 collections that free nothing: about 60 ms of CPU. The
entry point holds collection off (``hold``) before the CLI loads; ``release`` moves everything
alive into the permanent generation (``gc.freeze``), which later collections skip, and resumes
collection. ``mdp run`` releases once its pipeline has started, every other command as soon as
it is chosen. Called in-process (tests, an embedding app), ``hold`` was never called and
``release`` does nothing.
"""

from __future__ import annotations

import gc

_held = False


def hold() -> None:
    """Stop automatic garbage collection until ``release`` (a no-op if it is off already)."""
    global _held
    if gc.isenabled():
        gc.disable()
        _held = True


def release() -> None:
    """Freeze what start-up made and resume the collection ``hold`` stopped."""
    global _held
    if _held:
        gc.freeze()
        gc.enable()
        _held = False
