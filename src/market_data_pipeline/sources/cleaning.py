"""Turn one raw chunk (text or typed columns, named by field) into a tick or bar-input frame.

Every row gets a check code: 0 is good, ``BLANK`` an empty CSV line (every field of the line
empty, read columns or not: no data, dropped without a count; a line with any non-empty field is
checked like any other and counts as a bad row if a needed field is missing), anything else the
1-based position of the first failed check in ``CHECKS[kind]``. The checks, in order, with the
reason they count under:

- every kind: ``bad timestamp`` (missing, unparseable or outside 1678-2261, see ``timestamps``),
  ``missing symbol`` (null or empty), ``symbol over 256 bytes`` (UTF-8, ``MAX_SYMBOL_BYTES``)
- trades: ``bad price`` (missing, NaN, infinite, <= 0 or above ``MAX_VALUE``), ``bad size`` (NaN,
  infinite, < 0 or above ``MAX_VALUE``; a missing size column means size 0)
- quotes: ``no bid/ask`` (either side missing: the mid price needs both), ``bad bid/ask`` (NaN,
  infinite, <= 0 or too big), ``bad size`` (a bid/ask size that is NaN, infinite, < 0 or too
  big). Crossed quotes
  (bid > ask) are kept: real consolidated feeds have them. ``price`` is the mid, ``size`` 0.
- bars: ``bad price`` (any of open/high/low/close missing, NaN, infinite or <= 0), ``high < low``,
  ``bad high/low`` (open or close outside [low, high]), ``bad volume`` (NaN, infinite or < 0; no
  volume column means 0), ``bad vwap`` (present but not > 0), ``bad trades`` (present but < 0),
  ``duplicate bar`` (the same symbol and time as an earlier row of the same chunk).

``MAX_VALUE`` (1e15) bounds every price, size and volume: no real one comes near it, and below it
volume sums and price x size stay finite (1e308 would store volume or vwap as infinity). A column
of a type that is not a number or text (a Parquet boolean, list, struct or binary) reads as
missing, so its rows are bad rows naming the field. Decimal columns convert through their text,
so 100.96 stays 100.96 and does not become 100.96000000000001.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa

from .. import frames
from .base import TickKind
from .timestamps import TsUnit, text_bounds, to_ns

BLANK = 255
MAX_VALUE = 1e15
# Symbols are part of every store's primary key. PostgreSQL refuses an index entry over about
# 2.7 kB, so a longer symbol could never be written; real ones (OCC options: 21) are far shorter.
MAX_SYMBOL_BYTES = 256


@dataclass(frozen=True)
class Check:
    """One row rule: rows where ``bad`` holds count under ``reason``; ``field`` is the culprit.

    ``clear``, when given, is a test over the whole column (a few reductions) that holds only
    when no row is bad: the usual chunk, with nothing wrong, is passed without a row test.
    """

    reason: str
    field: str
    bad: pl.Expr
    clear: pl.Expr | None = None


def _not_positive(col: str) -> pl.Expr:
    c = pl.col(col)
    return (c.is_finite() & (c > 0) & (c <= MAX_VALUE)).fill_null(False).not_()


def _negative(col: str) -> pl.Expr:
    c = pl.col(col)
    return (c.is_not_null() & (~c.is_finite() | (c < 0) | (c > MAX_VALUE))).fill_null(False)


def _no_null(col: str) -> pl.Expr:
    return pl.col(col).null_count() == 0


def _all_within(col: str, *, zero: bool) -> pl.Expr:
    """Every non-null value is a number in (0, MAX_VALUE], or [0, MAX_VALUE] with ``zero``."""
    c = pl.col(col)
    low = c.min() >= 0 if zero else c.min() > 0
    return low & (c.max() <= MAX_VALUE) & c.is_nan().not_().all()


def _positive(reason: str, col: str) -> Check:
    """Rows whose ``col`` is missing, not finite, <= 0 or too big count under ``reason``."""
    return Check(reason, col, _not_positive(col), _no_null(col) & _all_within(col, zero=False))


_COMMON = (
    Check("bad timestamp", "ts", pl.col("ts_ns").is_null(), _no_null("ts_ns")),
    Check(
        "missing symbol",
        "symbol",
        pl.col("symbol").is_null() | (pl.col("symbol") == ""),
        _no_null("symbol") & (pl.col("symbol").str.len_bytes().min() > 0),
    ),
    Check(
        f"symbol over {MAX_SYMBOL_BYTES} bytes",
        "symbol",
        (pl.col("symbol").str.len_bytes() > MAX_SYMBOL_BYTES).fill_null(False),
        pl.col("symbol").str.len_bytes().max().fill_null(0) <= MAX_SYMBOL_BYTES,
    ),
)
_BAR_PRICES = ("open", "high", "low", "close")

CHECKS: dict[str, tuple[Check, ...]] = {
    "trades": (
        *_COMMON,
        _positive("bad price", "price"),
        Check(
            "bad size",
            "size",
            _negative("size") | pl.col("size").is_null(),
            _no_null("size") & _all_within("size", zero=True),
        ),
    ),
    "quotes": (
        *_COMMON,
        Check("no bid/ask", "bid", pl.col("bid").is_null(), _no_null("bid")),
        Check("no bid/ask", "ask", pl.col("ask").is_null(), _no_null("ask")),
        _positive("bad bid/ask", "bid"),
        _positive("bad bid/ask", "ask"),
        Check("bad size", "bid_size", _negative("bid_size"), _all_within("bid_size", zero=True)),
        Check("bad size", "ask_size", _negative("ask_size"), _all_within("ask_size", zero=True)),
    ),
    "bars": (
        *_COMMON,
        *(_positive("bad price", col) for col in _BAR_PRICES),
        Check("high < low", "high", pl.col("high") < pl.col("low")),
        Check(
            "bad high/low",
            "high",
            (pl.col("high") < pl.max_horizontal("open", "close"))
            | (pl.col("low") > pl.min_horizontal("open", "close")),
        ),
        Check("bad volume", "volume", _negative("volume") | pl.col("volume").is_null()),
        Check("bad vwap", "vwap", pl.col("vwap").is_not_null() & _not_positive("vwap")),
        Check("bad trades", "trades", (pl.col("trades") < 0).fill_null(False)),
        # A second bar for the same instrument and time would be folded in twice.
        Check("duplicate bar", "ts", pl.int_range(pl.len()).over("symbol", "ts_ns") > 0),
    ),
}

_FLOATS: dict[str, tuple[str, ...]] = {
    "trades": ("price", "size"),
    "quotes": ("bid", "ask", "bid_size", "ask_size"),
    "bars": (*_BAR_PRICES, "volume", "vwap"),
}
_DEFAULT_ZERO = {"size", "volume"}


@dataclass(frozen=True)
class Cleaned:
    """A chunk in the output shape (all rows, bad ones included) and each row's check code."""

    frame: pl.DataFrame
    code: pl.Series


def clean(
    batch: pa.RecordBatch,
    kind: TickKind,
    *,
    symbol: str | None,
    ts_unit: TsUnit,
    blank: pa.Array | None,
    tz: str = "UTC",
    ts_format: str | None = None,
) -> Cleaned:
    """Convert ``batch`` (columns named by field) to a ``kind`` frame with a check code per row.

    Rows marked in ``blank`` (lines with every field empty) get code ``BLANK``.
    """
    ts_ns = to_ns(batch.column("ts"), ts_unit, tz=tz, fmt=ts_format)
    columns: dict[str, pl.Series] = {"ts_ns": ts_ns}
    columns["symbol"] = _symbols(batch, symbol)
    for name in _FLOATS[kind]:
        columns[name] = _floats(batch, name)
    if kind == "bars":
        columns["trades"] = _floats(batch, "trades").cast(pl.Int64, strict=False)
    work = pl.DataFrame(columns)
    return Cleaned(_shape(work, kind), _codes(work, kind, blank))


def _codes(work: pl.DataFrame, kind: TickKind, blank: pa.Array | None) -> pl.Series:
    """Return each row's check code. A chunk with no bad or blank row (the usual one) costs one
    pass over the checks: which check failed first is asked only when some did."""
    marks = None if blank is None else pl.Series("blank", blank, dtype=pl.Boolean)
    if (marks is None or not marks.any()) and _all_clear(work, kind):
        return pl.zeros(work.height, pl.UInt8, eager=True).alias("code")
    flagged = work.with_columns(blank=pl.lit(False) if marks is None else marks)
    return flagged.select(_code_expr(kind)).to_series()


def _all_clear(work: pl.DataFrame, kind: TickKind) -> bool:
    """True when no row fails any check of ``kind``."""
    tests = [
        check.bad.not_().all() if check.clear is None else check.clear for check in CHECKS[kind]
    ]
    return work.select(pl.all_horizontal(tests)).item() is True


def _code_expr(kind: TickKind) -> pl.Expr:
    expr: Any = pl.when(pl.col("blank")).then(pl.lit(BLANK, pl.UInt8))
    for pos, check in enumerate(CHECKS[kind], start=1):
        expr = expr.when(check.bad).then(pl.lit(pos, pl.UInt8))
    done: pl.Expr = expr.otherwise(pl.lit(0, pl.UInt8)).alias("code")
    return done


def _shape(work: pl.DataFrame, kind: TickKind) -> pl.DataFrame:
    if kind == "bars":
        return work.select(list(frames.BAR_INPUT_SCHEMA))
    if kind == "trades":
        return work.select(list(frames.TICK_SCHEMA))
    mid = ((pl.col("bid") + pl.col("ask")) / 2).alias("price")
    return work.select(
        "symbol",
        "ts_ns",
        mid,
        pl.lit(0.0).alias("size"),
        *frames.QUOTE_EXTRA_SCHEMA,
    )


def _symbols(batch: pa.RecordBatch, symbol: str | None) -> pl.Series:
    if "symbol" not in batch.schema.names:
        return pl.repeat(symbol, batch.num_rows, dtype=pl.String, eager=True).alias("symbol")
    values = _decoded(batch.column("symbol"))
    try:
        # Polars reads string views as they are; a cast to string would copy every value.
        text = values if _is_text(values.type) else values.cast(pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # a list or struct: no symbol
        return pl.repeat(None, batch.num_rows, dtype=pl.String, eager=True).alias("symbol")
    symbols = pl.Series("symbol", text).cast(pl.String)
    return symbols if _unpadded(text) else _stripped(symbols)


def _unpadded(values: pa.Array) -> bool:
    """True when no value of a text column can begin or end with whitespace: its first and
    last bytes are printable ASCII (whitespace is ASCII up to the space, or not ASCII)."""
    bounds = text_bounds(values)
    if bounds is None:
        return False
    data, starts, ends = bounds
    filled = ends > starts
    first, last = data[starts[filled]], data[ends[filled] - 1]
    return bool(((first > 0x20) & (first < 0x80) & (last > 0x20) & (last < 0x80)).all())


def _stripped(text: pl.Series) -> pl.Series:
    """Strip surrounding whitespace. A column of ticks holds few distinct symbols, which are
    checked first: usually none needs it, and stripping every row cost more than the check.
    Each value that differs from the row before it stands for its run of repeats: a batch of
    one symbol's ticks hashes one value instead of every row."""
    if text.len() > 1:
        changes = text.slice(1).ne_missing(text.slice(0, text.len() - 1))
        text_starts = pl.concat([text.slice(0, 1), text.slice(1).filter(changes)])
    else:
        text_starts = text
    distinct = text_starts.unique()
    if (distinct.str.strip_chars() == distinct).all():
        return text
    return text.str.strip_chars()


def _floats(batch: pa.RecordBatch, name: str) -> pl.Series:
    if name not in batch.schema.names:
        value = 0.0 if name in _DEFAULT_ZERO else None
        return pl.repeat(value, batch.num_rows, dtype=pl.Float64, eager=True).alias(name)
    values = _decoded(batch.column(name))
    kind = values.type
    if pa.types.is_decimal(kind):
        values, kind = values.cast(pa.string()), pa.string()
    if _is_text(kind):
        text = pl.Series(name, values).cast(pl.String)
        numbers = text.cast(pl.Float64, strict=False)
        if numbers.null_count() == text.null_count():
            return numbers  # every value a number as it stands: none needs stripping
        # Surrounding whitespace changes no number, so only the values that failed are retried.
        return numbers.fill_null(text.str.strip_chars().cast(pl.Float64, strict=False))
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        # Unchecked: an integer past 2**53 (a uint64 size) becomes a float near it, which the
        # range checks then count as a bad row instead of the cast failing the whole read.
        return pl.Series(name, values.cast(pa.float64(), safe=False))
    # Not a number: a boolean (true is no price of 1.0), list, struct, binary, timestamp ...
    # column reads as missing (bad rows).
    return pl.repeat(None, batch.num_rows, dtype=pl.Float64, eager=True).alias(name)


def _decoded(values: pa.Array) -> pa.Array:
    if isinstance(values.type, pa.DictionaryType):
        return values.dictionary_decode()
    return values


def _is_text(kind: pa.DataType) -> bool:
    # String views are what polars writes; polars reads them without a copy.
    return bool(
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)
    )
