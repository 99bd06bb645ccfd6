"""ISO-8601 times given on the command line, as integer nanoseconds since the epoch (UTC).

Standard library only: ``mdp bars`` parses its flags before anything heavy is imported.
"""

from __future__ import annotations

from datetime import UTC, datetime

from .errors import UsageError


def iso_time_ns(text: str | None, flag: str) -> int | None:
    """Parse ``text`` (naive means UTC, ``Z`` accepted); refuse a bad one naming ``flag``."""
    if text is None:
        return None
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"bad {flag} {text!r}: expected ISO-8601, e.g. 2024-01-02T09:30Z"
        ) from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return int(ts.timestamp()) * 1_000_000_000 + ts.microsecond * 1_000
