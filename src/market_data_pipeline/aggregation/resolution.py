"""Resolution strings: fixed widths ("1s", "5m", "1h") and calendar ones ("1d", "1w", "1mo", "1y").

Units, lowercase: ``ms``, ``s``, ``m`` or ``min`` (minutes), ``h``, ``d``, ``w`` (weeks), ``mo``
(months), ``q`` (quarters), ``y`` (years). ``S``/``H``/``D``/``W`` are accepted in capitals, but a
capital ``M`` or ``Y`` is refused: ``1M`` means a month to some tools and a minute to others.

Every spelling of a width has one canonical label, the one bars are stored and looked up under:
the largest unit that divides it whole, within its family. Fixed widths (``ms``, ``s``, ``m``,
``h``): ``60s`` and ``1min`` are ``1m``, ``60m`` is ``1h``, ``90s`` stays ``90s``. Months,
quarters and years: ``3mo`` is ``1q``, ``12mo`` and ``4q`` are ``1y`` (their windows are the
same). Days and weeks are their own: ``24h`` is epoch-aligned while ``1d`` starts at local
midnight, and ``7d`` windows are not weeks from the week-start day. A trading calendar's code
follows the label in upper case: ``1d@XNYS``.

Activity resolutions (``1000tick``, ``100000volume``, ``1000000value``) and price types
(``1m:bid``) are read by ``activity_labels``; their ``unit`` is the activity and ``ns`` is 0.
A price type follows the canonical width: ``60s:bid`` is ``1m:bid``.

Fixed widths below a day are aligned to the UTC epoch. Days and longer are calendar windows laid
out in a time zone (see ``calendars``): a day from local midnight, a week from the week-start day,
a month, quarter or year from its first day. ``ns`` of a calendar resolution is its nominal length
(31 days a month, 92 a quarter, 366 a year): only for ordering resolutions, never for windows.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ..errors import UsageError
from .activity_labels import ACTIVITY_UNITS, parse_activity, price_suffix, split_price

_DAY_NS = 86_400 * 1_000_000_000
_UNIT_NS = {
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3_600 * 1_000_000_000,
    "d": _DAY_NS,
    "w": 7 * _DAY_NS,
    "mo": 31 * _DAY_NS,
    "q": 92 * _DAY_NS,
    "y": 366 * _DAY_NS,
}
# Units whose windows follow the calendar; value: length in months (0 for days and weeks).
CALENDAR_UNITS = {"d": 0, "w": 0, "mo": 1, "q": 3, "y": 12}
_VARIABLE_UNITS = ("mo", "q", "y")
_FIXED_UNITS = ("w", "d", "h", "m", "s", "ms")  # largest first
_PATTERN = re.compile(r"^\s*(\d+)\s*([a-zA-Z]+)\s*$")
_UNITS_TEXT = "ms, s, m (or min), h, d, w, mo, q, y"
# Units that rewrite into one another, largest first, each with its size in the family's
# smallest unit: a width is written in the largest unit that holds it whole.
_FAMILIES = (
    {unit: _UNIT_NS[unit] for unit in ("h", "m", "s", "ms")},
    {unit: CALENDAR_UNITS[unit] for unit in ("y", "q", "mo")},
)
# Event times are int64 nanoseconds (about 292 years either side of 1970): no width or duration
# may come near that, and a century is longer than any bar or wait anyone needs.
MAX_YEARS = 100
MAX_NS = MAX_YEARS * _UNIT_NS["y"]


@dataclass(frozen=True, slots=True)
class Resolution:
    """A bar width: its canonical label (``"5m"``), nominal length in ns, count and unit."""

    label: str
    ns: int
    count: int = 0
    unit: str = "ns"
    threshold: float = 0.0  # activity bars: ticks, volume or value per bar
    price: str = ""  # bid, ask, mid or last; "" takes the input's own price

    @property
    def is_activity(self) -> bool:
        """True for tick, volume and value bars (no time windows)."""
        return self.unit in ACTIVITY_UNITS

    @property
    def is_calendar(self) -> bool:
        """True for days and longer: windows follow local midnight, weeks, months, years."""
        return self.unit in CALENDAR_UNITS

    @property
    def months(self) -> int:
        """Months per window (``1mo`` -> 1, ``1q`` -> 3, ``2y`` -> 24); 0 for shorter units."""
        return self.count * CALENDAR_UNITS.get(self.unit, 0)

    def window_start(self, ts_ns: int) -> int:
        """Return the start of the epoch-aligned window holding ``ts_ns`` (fixed widths only)."""
        return ts_ns - ts_ns % self.ns


def _split(text: str, what: str) -> tuple[int, str]:
    match = _PATTERN.match(text)
    if match is None:
        raise UsageError(
            f"bad {what} {text!r}: expected a number and a unit ({_UNITS_TEXT}), e.g. 5s or 1m"
        )
    count, written = int(match.group(1)), match.group(2)
    unit = written.lower()
    if unit == "min":
        unit = "m"
    if written != written.lower() and unit in ("m", "mo", "ms", "y"):
        hint = "1y for a year" if unit == "y" else "1mo for a month or 1min for a minute"
        raise UsageError(
            f"bad {what} {text!r}: capital {written!r} is ambiguous; write {hint}"
            " (units are lowercase: m is minutes)"
        )
    if unit not in _UNIT_NS:
        raise UsageError(f"bad {what} {text!r}: unknown unit {written!r}; use {_UNITS_TEXT}")
    if count * _UNIT_NS[unit] > MAX_NS:
        raise UsageError(f"bad {what} {text!r}: longer than {MAX_YEARS} years")
    return count, unit


def _canonical(count: int, unit: str) -> tuple[int, str]:
    """Return the same width in the largest unit of its family that holds it whole."""
    for sizes in _FAMILIES:
        if unit in sizes:
            total = count * sizes[unit]
            bigger = next(name for name, size in sizes.items() if total % size == 0)
            return total // sizes[bigger], bigger
    return count, unit


def parse_duration_ns(text: str, *, what: str = "duration") -> int:
    """Parse ``"250ms"``, ``"5s"``, ``"1m"`` ... into nanoseconds; ``"0"`` is zero.

    Months, quarters and years have no fixed length and are refused.
    """
    if text.strip() == "0":
        return 0
    count, unit = _split(text, what)
    if unit in _VARIABLE_UNITS:
        raise UsageError(f"bad {what} {text!r}: a {unit} has no fixed length; use d, h, m or s")
    return count * _UNIT_NS[unit]


def duration_ns(value: str | float, *, what: str = "duration") -> int:
    """Parse a setting's duration into nanoseconds: text as ``parse_duration_ns`` reads it,
    or a number (or numeric text, ``"0.25"``) of seconds."""
    if isinstance(value, str):
        try:
            seconds = float(value)
        except ValueError:
            return parse_duration_ns(value, what=what)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value
    else:
        raise UsageError(f"bad {what} {value!r}: expected e.g. 2s, 500ms or a number of seconds")
    if not math.isfinite(seconds) or abs(seconds) * 1e9 > MAX_NS:
        raise UsageError(f"bad {what} {value!r}: expected a finite number of seconds")
    return round(seconds * 1e9)


def format_duration_ns(ns: int) -> str:
    """Write a duration as ``parse_duration_ns`` reads it, in its largest whole unit (``"2m"``);
    a duration finer than a millisecond as a number of seconds."""
    if ns == 0:
        return "0s"
    for unit in _FIXED_UNITS:
        if ns % _UNIT_NS[unit] == 0:
            return f"{ns // _UNIT_NS[unit]}{unit}"
    return repr(ns / 1e9)


def parse_resolution(text: str) -> Resolution:
    """Parse one resolution such as ``"1m"``, ``"1mo"``, ``"1000tick"`` or ``"1m:bid"``; raise
    ``UsageError`` for bad ones."""
    text, price = split_price(text)
    activity = parse_activity(text)
    if activity is not None:
        threshold, unit, label = activity
        label += price_suffix(price)
        return Resolution(label=label, ns=0, unit=unit, threshold=threshold, price=price)
    count, unit = _split(text, "resolution")
    if count <= 0:
        raise UsageError(f"bad resolution {text!r}: must be longer than zero")
    count, unit = _canonical(count, unit)
    label = f"{count}{unit}{price_suffix(price)}"
    return Resolution(label=label, ns=count * _UNIT_NS[unit], count=count, unit=unit, price=price)


def canonical_label(text: str) -> str:
    """Return the label bars of ``text`` are stored under: ``"60s"`` -> ``"1m"``,
    ``"60s:BID"`` -> ``"1m:bid"``, ``"1000-TICK"`` -> ``"1000tick"``, ``"1d@xnys"`` ->
    ``"1d@XNYS"``; raise ``UsageError`` for a bad resolution."""
    width, at, code = text.partition("@")
    label = parse_resolution(width).label
    if not at:
        return label
    if not code.strip().isalnum():
        raise UsageError(f"bad resolution {text!r}: expected a calendar code after @, e.g. 1d@XNYS")
    return f"{label}@{code.strip().upper()}"


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
