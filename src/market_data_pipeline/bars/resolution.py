"""Resolution strings ("1s", "5m", "1h", "1d", "1w") and epoch-aligned UTC windows."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UsageError

_UNIT_NS = {
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3_600 * 1_000_000_000,
    "d": 86_400 * 1_000_000_000,
    "w": 7 * 86_400 * 1_000_000_000,
}
_PATTERN = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Resolution:
    """A bar width: its canonical label (``"5m"``) and its length in nanoseconds."""

    label: str
    ns: int

    def window_start(self, ts_ns: int) -> int:
        """Return the start of the epoch-aligned window holding ``ts_ns``."""
        return ts_ns - ts_ns % self.ns


def parse_duration_ns(text: str, *, what: str = "duration") -> int:
    """Parse ``"250ms"``, ``"5s"``, ``"1m"`` ... into nanoseconds; ``"0"`` is zero."""
    if text.strip() == "0":
        return 0
    match = _PATTERN.match(text)
    if match is None:
        raise UsageError(
            f"bad {what} {text!r}: expected a number and a unit (ms, s, m, h, d, w), e.g. 5s or 1m"
        )
    count, unit = int(match.group(1)), match.group(2).lower()
    return count * _UNIT_NS[unit]


def parse_resolution(text: str) -> Resolution:
    """Parse one resolution string such as ``"1m"``; raise ``UsageError`` for bad ones."""
    ns = parse_duration_ns(text, what="resolution")
    if ns <= 0:
        raise UsageError(f"bad resolution {text!r}: must be longer than zero")
    match = _PATTERN.match(text)
    assert match is not None  # parse_duration_ns accepted it
    return Resolution(label=f"{int(match.group(1))}{match.group(2).lower()}", ns=ns)


def parse_resolutions(text: str) -> list[Resolution]:
    """Parse a comma-separated list ("1m,5m"), dropping duplicates and keeping order."""
    seen: dict[str, Resolution] = {}
    for part in text.split(","):
        if part.strip():
            res = parse_resolution(part)
            seen.setdefault(res.label, res)
    if not seen:
        raise UsageError("no resolution given: expected e.g. --resolution 1m or 1m,5m")
    return list(seen.values())
