"""Errors of the contract tooling; each derives from ``ContractsError``.

ContractsError                 the contract tooling could not do its job    (exit 1)
├── CellSetupError             a matrix cell's environment could not be built
└── DispatchError              a repository_dispatch request was refused
"""

from __future__ import annotations

EXIT_FAILED = 1


class ContractsError(Exception):
    """The contract tooling could not do what was asked."""

    exit_code = EXIT_FAILED


class CellSetupError(ContractsError):
    """A matrix cell's environment could not be built, or its Core is not the one asked for."""


class DispatchError(ContractsError):
    """A ``repository_dispatch`` request failed; the message names the repository and the cause."""

    def __init__(self, repo: str, status: int | None, message: str, attempts: int = 1) -> None:
        self.repo = repo
        self.status = status
        self.attempts = attempts
        super().__init__(f"{repo}: {message}")
