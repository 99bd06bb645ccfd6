"""Optional drivers: check one is installed, or say which extra provides it (stdlib only)."""

from __future__ import annotations

import importlib.util

from .errors import UsageError

# The import name of each optional driver, and the extra of this package that installs it.
EXTRAS = {
    "psycopg": "postgres",
    "redis": "redis",
    "nats": "nats",
    "fastapi": "serve",
    "uvicorn": "serve",
}


def require_extra(module: str, needed_for: str) -> None:
    """Raise ``UsageError`` naming the ``pip install`` line when ``module`` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise UsageError(missing_extra(module, needed_for))


def missing_extra(module: str, needed_for: str) -> str:
    """Return the hint for a missing optional driver, e.g. for ``--sink postgresql://``."""
    extra = EXTRAS[module]
    return f"{needed_for} needs {module}: pip install 'market-data-pipeline[{extra}]'"
