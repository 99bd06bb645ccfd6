"""Turn a raw timestamp column into integer epoch nanoseconds (UTC), vectorised.

Accepted values:

- Arrow/Parquet timestamps (a naive timestamp is taken as UTC) and dates (midnight UTC).
- Epoch numbers, integer or fractional. With ``unit="auto"`` the unit follows the magnitude:
  below 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds. That is
  unambiguous for every time from 1973-03-03 to 2262; set the unit for earlier times. Fractional
  values are exact to about a microsecond (float64).
- ISO-8601 strings: ``YYYY-MM-DD``, ``YYYY-MM-DD[T ]hh:mm[:ss[.fffffffff]]``, optionally followed by
  ``Z`` or an offset (``+hh:mm``, ``+hhmm``). A string without offset (naive) is taken as UTC.

``tz`` (an IANA zone, default UTC) is the zone of naive values (strings without offset, naive
Arrow timestamps, dates); epoch numbers and values with an offset are instants already. A naive
time that a DST jump skips is unusable; one that a DST fall-back repeats is the earlier instant.
``fmt`` (strftime, e.g. ``%m/%d/%Y``) parses strings in that one form only.

Values that fit none of these, or fall outside the range the pipeline represents, become null; the
caller decides what a null means (a replay counts the row as a bad timestamp). That range is
``MIN_TS_NS`` (1678-01-01T00:00:00Z) to ``MAX_TS_NS`` (2262-01-01T00:00:00Z, excluded): whole
years inside int64 nanoseconds, so no value anywhere near it can wrap around. Every parser is
checked, because Arrow's and polars' string parsers silently wrap a time outside int64
nanoseconds (1677-01-01 would become 2261-07-22).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any, Literal

# pyarrow.compute: polars imports it on the first conversion from Arrow, 65 ms that would
# otherwise land on the first batch of a live feed.
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute

TsUnit = Literal["auto", "s", "ms", "us", "ns"]

UNIT_NS: dict[str, int] = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_UNIT_OF: dict[int, TsUnit] = {1_000_000_000: "s", 1_000_000: "ms", 1_000: "us", 1: "ns"}

# Magnitude bounds of the auto unit: a value below the bound is in that unit.
_AUTO_BOUNDS: tuple[tuple[float, int], ...] = (
    (1e11, 1_000_000_000),
    (1e14, 1_000_000),
    (1e17, 1_000),
)
_NS_LIMIT = 9.2e18  # a little inside int64, so rounding never overflows
MIN_TS_NS = -9_214_560_000 * 1_000_000_000  # 1678-01-01T00:00:00Z
MAX_TS_NS = 9_214_646_400 * 1_000_000_000  # 2262-01-01T00:00:00Z, excluded
# Inside both the range and the conversion limit: a whole column inside needs no per-row test.
_USABLE_LOW, _USABLE_HIGH = max(MIN_TS_NS, -int(_NS_LIMIT)), min(MAX_TS_NS, int(_NS_LIMIT))
_MIN_YEAR, _MAX_YEAR = 1678, 2261
_YEARS = (str(_MIN_YEAR), str(_MAX_YEAR + 1))  # as text, "1678" <= year < "2262"
_YEAR_LOW, _YEAR_END = (int.from_bytes(year.encode(), "big") for year in _YEARS)

_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_OFFSET = re.compile(r"\d:\d\d(:\d\d(\.\d*)?)?\s*(Z|[+-]\d\d(:?\d\d)?)$")

_ISO_FORMATS = (
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M%#z",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M%#z",
    "%Y-%m-%d %H:%M",
)


def to_ns(
    values: pa.Array, unit: TsUnit = "auto", *, tz: str = "UTC", fmt: str | None = None
) -> pl.Series:
    """Convert a timestamp column to Int64 epoch nanoseconds; unusable values become null.

    A value outside ``[MIN_TS_NS, MAX_TS_NS)`` is unusable.
    """
    if isinstance(values.type, pa.DictionaryType):
        values = values.dictionary_decode()
    if pa.types.is_string_view(values.type):  # what polars writes: text like any other
        values = values.cast(pa.string())
    kind = values.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        naive = pa.types.is_date(kind) or kind.tz is None
        out = _in_zone(_temporal_to_ns(values), tz) if naive else _temporal_to_ns(values)
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        out = epoch_to_ns(_decimals_as_float(values), unit)
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if fmt is not None:
            out = _formatted(values, fmt, tz)
        elif tz != "UTC":
            out = _zoned_strings(values, unit, tz)
        else:
            out = _strings_to_ns(values, unit)
    else:
        return pl.Series("ts_ns", [None] * len(values), dtype=pl.Int64)
    return in_range(out)


def in_range(ts_ns: pl.Series) -> pl.Series:
    """Return ``ts_ns`` with every value outside ``[MIN_TS_NS, MAX_TS_NS)`` set to null."""
    if ts_ns.is_empty():
        return ts_ns.cast(pl.Int64).alias("ts_ns")
    ints = ts_ns.cast(pl.Int64)
    low, high = ints.min(), ints.max()
    if (
        not isinstance(low, int)
        or not isinstance(high, int)
        or (low >= MIN_TS_NS and high < MAX_TS_NS)
    ):
        return ints.alias("ts_ns")  # all null, or all in range
    frame = pl.DataFrame({"ts_ns": ints})
    v = pl.col("ts_ns")
    return frame.select(pl.when((v >= MIN_TS_NS) & (v < MAX_TS_NS)).then(v).alias("ts_ns"))["ts_ns"]


def _decimals_as_float(values: pa.Array) -> pl.Series:
    if pa.types.is_decimal(values.type):
        # Through text: a decimal wider than float64's range would make polars raise.
        values = values.cast(pa.string()).cast(pa.float64())
    return _series(values)


def epoch_to_ns(values: pl.Series, unit: TsUnit = "auto") -> pl.Series:
    """Convert epoch numbers to Int64 nanoseconds, in ``unit`` or a unit found by magnitude."""
    frame = pl.DataFrame({"v": values})
    if values.dtype.is_integer():
        ints = values.cast(pl.Int64, strict=False)
        low, high = ints.min(), ints.max()
        bounds = (low, high) if isinstance(low, int) and isinstance(high, int) else None
        if unit == "auto" and bounds is not None:
            unit = _shared_unit(*bounds)
        if unit != "auto" and bounds is not None and _all_usable(*bounds, UNIT_NS[unit]):
            return (ints * UNIT_NS[unit] if unit != "ns" else ints).alias("ts_ns")
        expr = _int_epoch(pl.col("v").cast(pl.Int64, strict=False), unit)
    else:
        expr = _float_epoch(pl.col("v").cast(pl.Float64), unit)
    return frame.select(expr.alias("ts_ns"))["ts_ns"]


def _all_usable(low: int, high: int, factor: int) -> bool:
    """True when every value of a column from ``low`` to ``high``, times ``factor``, is a usable
    time, so the column converts as a whole (nulls stay null); exact integers."""
    return low * factor >= _USABLE_LOW and high * factor < _USABLE_HIGH


def _shared_unit(low: int, high: int) -> TsUnit:
    """Return the unit that magnitude gives every value from ``low`` to ``high``, or ``auto``
    when they differ.

    The unit goes with ``|value|`` in ranges, so the smallest and largest magnitudes decide for
    all: one unit for the column spares a per-row choice on every row.
    """
    least = 0 if low < 0 < high else min(abs(low), abs(high))
    first, last = _auto_factor(least), _auto_factor(max(abs(low), abs(high)))
    if first != last:
        return "auto"
    return _UNIT_OF[first]


def _auto_factor(magnitude: int) -> int:
    # As _factor compares: the value as a float against each bound.
    return next((factor for bound, factor in _AUTO_BOUNDS if float(magnitude) < bound), 1)


def _factor(v: pl.Expr, unit: TsUnit) -> pl.Expr:
    if unit != "auto":
        return pl.lit(UNIT_NS[unit], dtype=pl.Int64)
    magnitude = v.abs()
    expr: Any = pl.when(magnitude < _AUTO_BOUNDS[0][0]).then(pl.lit(_AUTO_BOUNDS[0][1], pl.Int64))
    for bound, factor in _AUTO_BOUNDS[1:]:
        expr = expr.when(magnitude < bound).then(pl.lit(factor, pl.Int64))
    done: pl.Expr = expr.otherwise(pl.lit(1, pl.Int64))
    return done


def _int_epoch(v: pl.Expr, unit: TsUnit) -> pl.Expr:
    factor = _factor(v.cast(pl.Float64), unit)
    fits = (v.cast(pl.Float64) * factor.cast(pl.Float64)).abs() < _NS_LIMIT
    return pl.when(fits).then(v * factor)


def _float_epoch(v: pl.Expr, unit: TsUnit) -> pl.Expr:
    factor = _factor(v, unit)
    whole = v.floor()
    fits = v.is_finite() & ((v * factor.cast(pl.Float64)).abs() < _NS_LIMIT)
    # Whole and fractional parts apart: the whole part stays exact in int64.
    ns = whole.cast(pl.Int64, strict=False) * factor + ((v - whole) * factor).round().cast(pl.Int64)
    return pl.when(fits).then(ns)


def _in_zone(wall_ns: pl.Series, tz: str) -> pl.Series:
    """Read wall times (ns as if UTC) as local times in ``tz``."""
    if tz == "UTC":
        return wall_ns
    local = pl.from_epoch(wall_ns, time_unit="ns").dt.replace_time_zone(
        tz, ambiguous="earliest", non_existent="null"
    )
    return local.dt.epoch("ns").alias("ts_ns")


def _formatted(values: pa.Array, fmt: str, tz: str) -> pl.Series:
    raw = _series(values).str.strip_chars()
    zone = "UTC" if "%z" in fmt or "%Z" in fmt else None
    ns = raw.str.to_datetime(fmt, time_unit="ns", time_zone=zone, strict=False).dt.epoch("ns")
    # The year may sit anywhere in a custom format: a microsecond parse, which cannot wrap,
    # tells the values whose nanoseconds wrapped around int64.
    us = raw.str.to_datetime(fmt, time_unit="us", time_zone=zone, strict=False).dt.epoch("us")
    frame = pl.DataFrame({"ns": ns, "us": us})
    same = (pl.col("ns") // 1000 - pl.col("us")).abs() <= 1
    kept = frame.select(pl.when(same).then(pl.col("ns")).alias("ts_ns"))["ts_ns"]
    return kept if zone else _in_zone(kept, tz)


def _zoned_strings(values: pa.Array, unit: TsUnit, tz: str) -> pl.Series:
    """Parse strings as in UTC, then move the naive ones (no offset written) into ``tz``."""
    parsed = _strings_to_ns(values, unit)
    raw = _series(values).str.strip_chars()
    naive = ~raw.str.contains(_OFFSET.pattern).fill_null(False)
    naive &= ~raw.str.contains(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$").fill_null(False)
    if not naive.any():
        return parsed
    return parsed.zip_with(~naive, _in_zone(parsed, tz)).alias("ts_ns")


def _temporal_to_ns(values: pa.Array) -> pl.Series:
    # The physical value is the UTC instant (naive: wall time read as UTC). It is taken as a
    # plain integer in Arrow: converting a timestamp[s] beyond 2262 to a polars Datetime
    # overflows, and a date in year 9999 times a day in nanoseconds wraps.
    kind = values.type
    if pa.types.is_date32(kind):
        factor, physical = 86_400_000_000_000, values.cast(pa.int32()).cast(pa.int64())
    elif pa.types.is_date64(kind):
        factor, physical = 1_000_000, values.cast(pa.int64())
    else:
        factor, physical = UNIT_NS[kind.unit], values.cast(pa.int64())
    frame = pl.DataFrame({"v": _series(physical)})
    v = pl.col("v")
    fits = (v >= -(-MIN_TS_NS // factor)) & (v < -(-MAX_TS_NS // factor))
    return frame.select(pl.when(fits).then(v * factor).alias("ts_ns"))["ts_ns"]


def _strings_to_ns(values: pa.Array, unit: TsUnit) -> pl.Series:
    sample = _first_value(values)
    if sample is None:
        return pl.Series("ts_ns", [None] * len(values), dtype=pl.Int64)
    out = _fast_strings(values, sample.strip(), unit)
    if out is not None and out.null_count() == values.null_count:
        if _is_epoch_text(sample) or _years_in_range(values):
            return out
        return _drop_wrapped_years(out, _series(values))
    # The careful path, for the rows the fast one left: whatever their form, row by row.
    raw = _series(values).str.strip_chars()
    if out is None:
        out = epoch_to_ns(raw.cast(pl.Int64, strict=False), unit)
    todo = out.is_null() & raw.is_not_null()
    if todo.any():
        out = _fill(out, todo, raw, partial(_epoch_text, unit=unit))
        todo = out.is_null() & raw.is_not_null()
    for fmt in _ISO_FORMATS:
        if not todo.any():
            break
        out = _fill(out, todo, raw, partial(_strptime, fmt=fmt))
        todo = out.is_null() & raw.is_not_null()
    return _drop_wrapped_years(out, raw)


def _is_epoch_text(sample: str) -> bool:
    text = sample.strip()
    return bool(_INTEGER.fullmatch(text) or _NUMBER.fullmatch(text))


def _years_in_range(values: pa.Array) -> bool:
    """True when every value of a text column sorts from the first usable year to the last.

    Each then starts with a digit, so none has whitespace to strip, and any whose first four
    characters are a number is a year in range: none can have wrapped. The usual column is
    passed without parsing every row's year again. Values of one width (most files) are
    compared by their first four bytes as big-endian numbers, in place.
    """
    bounds = text_bounds(values)
    if bounds is not None and len(values):
        data, starts, ends = bounds
        width = int(ends[0] - starts[0])
        if width >= 4 and bool((ends - starts == width).all()):
            heads = np.ndarray((len(values),), ">u4", data, int(starts[0]), (width,))
            return bool(heads.min() >= _YEAR_LOW and heads.max() < _YEAR_END)
    raw = _series(values)
    low, high = raw.min(), raw.max()
    return (
        isinstance(low, str)
        and isinstance(high, str)
        and _YEARS[0] <= low < _YEARS[1]
        and high < _YEARS[1]
    )


def text_bounds(values: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Return the bytes of a string or large_string array and each value's start and end in
    them, or None for another type or an array with nulls (whose spans say nothing)."""
    if values.null_count or not (
        pa.types.is_string(values.type) or pa.types.is_large_string(values.type)
    ):
        return None
    _, spans, buffer = values.buffers()
    wide = pa.types.is_large_string(values.type)
    offsets = np.frombuffer(spans, np.int64 if wide else np.int32)
    offsets = offsets[values.offset : values.offset + len(values) + 1]
    data = np.frombuffer(buffer, np.uint8) if buffer is not None else np.zeros(0, np.uint8)
    return data, offsets[:-1], offsets[1:]


def _drop_wrapped_years(out: pl.Series, raw: pl.Series) -> pl.Series:
    """Null the ISO dates whose year is outside the range: their parsed value may have wrapped.

    ISO strings start with a four-digit year and a dash; a longer year never parses.
    """
    text = raw.str.strip_chars()
    iso = text.str.slice(4, 1) == "-"
    year = text.str.slice(0, 4).cast(pl.Int64, strict=False)
    wrapped = (iso & ~year.is_between(_MIN_YEAR, _MAX_YEAR)).fill_null(False)
    if not wrapped.any():
        return out
    return pl.DataFrame({"ts_ns": out, "w": wrapped}).select(
        pl.when(~pl.col("w")).then(pl.col("ts_ns")).alias("ts_ns")
    )["ts_ns"]


def _fast_strings(values: pa.Array, sample: str, unit: TsUnit) -> pl.Series | None:
    """Parse the whole column in the form of its first value; None when that form fails.

    A failed Arrow cast costs far more than a successful one, so only the likely form is tried.
    """
    if _INTEGER.fullmatch(sample):
        return epoch_to_ns(_series(values).cast(pl.Int64, strict=False), unit)
    if _NUMBER.fullmatch(sample):
        return epoch_to_ns(_series(values).cast(pl.Float64, strict=False), unit)
    target = pa.timestamp("ns", "UTC") if _OFFSET.search(sample) else pa.timestamp("ns")
    try:
        cast = values.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return _series(cast.cast(pa.int64())).alias("ts_ns")


def _epoch_text(raw: pl.Series, unit: TsUnit) -> pl.Series:
    as_int = epoch_to_ns(raw.cast(pl.Int64, strict=False), unit)
    return as_int.fill_null(epoch_to_ns(raw.cast(pl.Float64, strict=False), unit))


def _first_value(values: pa.Array) -> str | None:
    for i in range(min(len(values), 64)):
        value = values[i].as_py()
        if value is not None:
            return str(value)
    rest = values.drop_null()
    return str(rest[0].as_py()) if len(rest) else None


def _strptime(raw: pl.Series, fmt: str) -> pl.Series:
    parsed = raw.str.to_datetime(fmt, time_unit="ns", time_zone="UTC", strict=False)
    return parsed.dt.epoch("ns")


def _fill(
    out: pl.Series, todo: pl.Series, raw: pl.Series, parse: Callable[[pl.Series], pl.Series]
) -> pl.Series:
    idx = todo.arg_true()
    parsed = parse(raw.gather(idx))
    return out.scatter(idx, parsed.cast(pl.Int64))


def _series(values: pa.Array) -> pl.Series:
    series = pl.from_arrow(values)
    assert isinstance(series, pl.Series)
    return series
