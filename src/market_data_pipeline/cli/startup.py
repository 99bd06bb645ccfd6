"""How the ``mdp`` process starts, so that start-up costs only what the command needs.

Garbage collection is held off while ``mdp`` starts, then resumed for the command's work.

Start-up allocates about 100,000 objects (Core's pydantic models, polars, typer, the pipeline's
modules) that all live until the process exits. CPython collects as objects are allocated, so
the imports alone set off some 230 collections that free nothing: about 60 ms of CPU. The
entry point holds collection off (``hold``) before the CLI loads; ``release`` moves everything
alive into the permanent generation (``gc.freeze``), which later collections skip, and resumes
collection. ``mdp run`` releases once its pipeline has started, every other command as soon as
it is chosen. Called in-process (tests, an embedding app), ``hold`` was never called and
``release`` does nothing.

numpy's OpenBLAS starts a thread per core when numpy is imported, and each spins for about
0.1 s before it sleeps: some 40 ms of CPU on a 2-core machine in every run, for nothing, as mdp
does no linear algebra (its numpy work is sorting, cumulative sums and reductions, which never
call BLAS). ``one_blas_thread`` asks for one thread unless the environment already chose.

polars runs its calls on a thread pool sized to the cores (``POLARS_MAX_THREADS``, read once,
when polars is imported). A run makes many small calls (a few per chunk of a replay, per fetched
batch of a live source), each handed to the pool; the pool's threads spin in ``sched_yield``
between calls and take the cores from the run's own threads (reader, bar engine, writer), which
already keep them busy. On 2 cores that cost 10-25% more CPU for a replay and 10-35% for a live
NATS worker than one thread, at no gain in wall time or latency. ``one_polars_thread`` asks for
one thread, unless the environment already chose or polars is loaded already (a caller
in-process: the variable would change nothing). One thread also makes bars reproducible: with
two, polars summed a window's price x size in an order that varied from run to run.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Mapping, MutableMapping

# The variables OpenBLAS reads its thread count from, in its order of precedence.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
POLARS_THREAD_VARIABLE = "POLARS_MAX_THREADS"

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


def one_blas_thread(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set ``OPENBLAS_NUM_THREADS=1`` unless a variable OpenBLAS reads is set already."""
    if not any(name in environ for name in BLAS_THREAD_VARIABLES):
        environ["OPENBLAS_NUM_THREADS"] = "1"


def one_polars_thread(
    environ: MutableMapping[str, str] = os.environ,
    modules: Mapping[str, object] = sys.modules,
) -> None:
    """Set ``POLARS_MAX_THREADS=1`` unless it is set or polars is loaded already."""
    if POLARS_THREAD_VARIABLE not in environ and "polars" not in modules:
        environ[POLARS_THREAD_VARIABLE] = "1"
