"""Map the column names of a real export to the pipeline's fields and decide its kind.

Names are compared case-insensitively with spaces, ``_`` and ``-`` ignored (``Bid Size``,
``bid_size`` and ``BidSize`` are the same). Two columns that could feed one field the kind
reads (``price`` twice, ``time`` beside ``ts``) are an error naming both.

Kind detection: ``open/high/low/close`` present -> bars; else ``bid`` and ``ask`` -> quotes;
else a price column -> trades. ``volume`` is a trade size only when the file is not a bar file.
The timestamp column is the first of ``ts/time/timestamp/date/datetime`` (Binance's
``transact_time`` and ``open_time`` too); failing that, an unnamed
first column (a pandas index written to CSV: header ``""`` or ``Unnamed: 0``, or Parquet's
``__index_level_0__``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import BadInputError
from .base import TickKind

ALIASES: dict[str, tuple[str, ...]] = {
    "ts": ("ts", "time", "timestamp", "date", "datetime", "transacttime", "opentime"),
    "symbol": ("symbol", "ticker", "sym", "instrument"),
    "price": ("price", "px", "last", "lastprice", "tradeprice"),
    "size": ("size", "qty", "quantity", "amount", "tradesize", "lastsize"),
    "bid": ("bid", "bidprice", "bidpx"),
    "ask": ("ask", "askprice", "askpx", "offer"),
    "bid_size": ("bidsize", "bidqty", "bidquantity"),
    "ask_size": ("asksize", "askqty", "askquantity", "offersize"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "volume": ("volume", "vol"),
    "vwap": ("vwap",),
    "trades": ("trades", "tradecount", "ntrades", "numtrades", "numberoftrades", "count"),
}

_UNNAMED = ("", "unnamed0", "indexlevel0")
_BAR_FIELDS = ("open", "high", "low", "close")

# Fields each kind reads: required first, then optional.
REQUIRED: dict[str, tuple[str, ...]] = {
    "trades": ("ts", "price"),
    "quotes": ("ts", "bid", "ask"),
    "bars": ("ts", *_BAR_FIELDS),
}
OPTIONAL: dict[str, tuple[str, ...]] = {
    "trades": ("symbol", "size"),
    "quotes": ("symbol", "bid_size", "ask_size"),
    "bars": ("symbol", "volume", "vwap", "trades"),
}


@dataclass(frozen=True)
class ColumnMap:
    """Which input column (by position) feeds each field, for one file."""

    kind: TickKind
    index: dict[str, int]  # field -> column position in the file
    names: tuple[str, ...]  # the file's column names, as written

    def name(self, field: str) -> str:
        """Return the input column name that feeds ``field`` (the field itself when synthesised)."""
        pos = self.index.get(field)
        return field if pos is None else (self.names[pos] or f"column {pos + 1}")


def normalise(name: str) -> str:
    """Return the comparison key of a column name."""
    return re.sub(r"[\s_\-:]", "", name.strip().lstrip("\ufeff").lower())


def map_columns(names: Sequence[str], kind: TickKind | None, path: str) -> ColumnMap:
    """Map ``names`` to fields and detect the kind unless given; raise if they fit none, or
    if two columns would feed one field the kind reads (which one is meant is not ours to
    guess: two ``price`` columns, or ``time`` beside ``ts``)."""
    keys = [normalise(n) for n in names]
    candidates = _candidates(keys)
    found = {field: positions[0] for field, positions in candidates.items()}
    if "ts" not in found:
        unnamed = _unnamed_ts(keys)
        if unnamed is not None:
            found["ts"] = unnamed
    has_bars = all(f in found for f in _BAR_FIELDS)
    if "size" not in found and not has_bars and "volume" in found:
        found["size"] = found["volume"]
    chosen = kind or _detect(found, has_bars)
    if chosen is None:
        raise BadInputError(
            f"columns {list(names)} fit no kind: need a timestamp and price (trades), "
            "bid and ask (quotes) or open/high/low/close (bars)",
            path=path,
        )
    missing = [f for f in REQUIRED[chosen] if f not in found]
    if missing:
        raise BadInputError(
            f"columns {list(names)} lack {', '.join(missing)} for {chosen}", path=path
        )
    fields = REQUIRED[chosen] + OPTIONAL[chosen]
    for field in fields:
        positions = candidates.get(field, [])
        if len(positions) > 1 and found.get(field) in positions:
            raise BadInputError(
                f"{_both(names, positions[:2])} both give the {field} field: keep one, or "
                "rename the other",
                path=path,
            )
    return ColumnMap(chosen, {f: found[f] for f in fields if f in found}, tuple(names))


def _both(names: Sequence[str], positions: list[int]) -> str:
    first, second = (names[pos] for pos in positions)
    where = f"columns {positions[0] + 1} and {positions[1] + 1}"
    if first == second:
        return f"two columns named {first!r} ({where})"
    return f"columns {first!r} and {second!r} ({where})"


def _candidates(keys: list[str]) -> dict[str, list[int]]:
    """Every column position that could feed each field, in alias order (the first is used)."""
    found: dict[str, list[int]] = {}
    for field, aliases in ALIASES.items():
        positions = [pos for alias in aliases for pos, key in enumerate(keys) if key == alias]
        if positions:
            found[field] = positions
    return found


def _unnamed_ts(keys: list[str]) -> int | None:
    if keys and keys[0] in _UNNAMED:
        return 0
    if "indexlevel0" in keys:
        return keys.index("indexlevel0")
    return None


def _detect(found: dict[str, int], has_bars: bool) -> TickKind | None:
    if "ts" not in found:
        return None
    if has_bars:
        return "bars"
    if "bid" in found and "ask" in found:
        return "quotes"
    if "price" in found:
        return "trades"
    return None
