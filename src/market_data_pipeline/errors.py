"""Exceptions raised by the pipeline; every one derives from ``PipelineError``.

    PipelineError
    ├── UsageError                 bad flags, config or resolution string       (exit 2)
    ├── BadInputError              a bad row, field or file in the input        (exit 2)
    ├── SinkError                  the store failed
    │   ├── SinkUnavailableError   the store stayed down after every retry      (exit 1)
    │   ├── SinkTransactionLostError  a replay's run transaction is gone; final  (exit 1)
    │   └── SinkRefusedError       an error no retry fixes (read-only, a table of
    │       │                          another shape, a value the store cannot hold) (exit 1)
    │       └── SinkSetupError         ... found at start or on reading: nothing was
    │                                  written (no such database, login refused)     (exit 2)
    ├── BusError                   the feedback bus failed                      (exit 1)
    ├── ProviderError              a Core MarketDataProvider source failed      (exit 1)
    ├── LateTicksError             a replay had late ticks under --on-late fail (exit 1)
    ├── ReconciliationError        a run's counts do not add up                 (exit 1)
    └── PipelineStateError         a pipeline used out of order (run after close)

Driver exceptions (sqlite3, psycopg, redis) are translated at the module that talks to the driver
and never leak past it; the stores' own are sorted into passing and permanent in
``sinks.failures``. Only passing ones (``SinkError``, ``SinkUnavailableError``) are retried.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class PipelineError(Exception):
    """Root of every error the pipeline raises on purpose."""

    exit_code = EXIT_FAILED


class UsageError(PipelineError):
    """A flag, config key, URL scheme or resolution string is not valid."""

    exit_code = EXIT_BAD_INPUT


class BadInputError(PipelineError):
    """An input file, row or field cannot be used; the message names which and why."""

    exit_code = EXIT_BAD_INPUT

    def __init__(
        self,
        reason: str,
        *,
        path: str | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.reason = reason
        self.path = path
        self.row = row
        self.field = field
        super().__init__(self._format())

    def _format(self) -> str:
        parts = (self.path, _opt("row", self.row), _opt("field", self.field))
        where = [part for part in parts if part]
        return f"{', '.join(where)}: {self.reason}" if where else self.reason


def _opt(label: str, value: object) -> str | None:
    return None if value is None else f"{label} {value}"


class SinkError(PipelineError):
    """A write to the store failed."""


class SinkUnavailableError(SinkError):
    """The store is unreachable; ``unwritten`` bars were not stored (None: none were at stake)."""

    def __init__(self, message: str, *, unwritten: int | None = None) -> None:
        self.reason = message
        self.unwritten = unwritten
        suffix = f" ({unwritten} bars not written)" if unwritten is not None else ""
        super().__init__(f"{message}{suffix}")


class SinkTransactionLostError(SinkError):
    """The run transaction of a transactional sink is gone; no retry can bring it back."""


class SinkRefusedError(SinkError):
    """The store failed for a reason no retry fixes: it is read-only, its table has other
    columns, it cannot hold a value (a symbol longer than its index allows)."""


class SinkSetupError(SinkRefusedError):
    """The store cannot be used as given, found before anything was written: no such database
    or file, a refused login, a read-only store, a bars table of another shape."""

    exit_code = EXIT_BAD_INPUT


class BusError(PipelineError):
    """The feedback bus could not be used."""


class ProviderError(PipelineError):
    """A Core ``MarketDataProvider`` source failed (could not connect, stopped streaming)."""


class LateTicksError(PipelineError):
    """A replay run with ``on_late="fail"`` had ticks that came after their window closed."""


class ReconciliationError(PipelineError):
    """A run's counts do not add up: a tick or a built bar is not accounted for."""


class PipelineStateError(PipelineError):
    """A pipeline was used out of order: started twice, or run or finished after it closed."""
