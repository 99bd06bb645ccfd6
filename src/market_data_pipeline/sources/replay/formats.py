"""Layouts of real exports (presets, header-less column lists) and compressed CSV streams.

Presets name the columns of an export whose files have no header line, by the layouts their
publishers document:

- ``binance-aggtrades``: ``agg_trade_id, price, quantity, first_trade_id, last_trade_id,
  transact_time, is_buyer_maker, is_best_match`` (data.binance.vision aggTrades; the time is
  epoch milliseconds, or microseconds in newer spot files: the unit follows the magnitude).
- ``binance-klines``: ``open_time, open, high, low, close, volume, close_time, quote_volume,
  count, taker_buy_volume, taker_buy_quote_volume, ignore`` (bars starting at ``open_time``).
- ``tardis-trades``: ``exchange, symbol, timestamp, local_timestamp, id, side, price, amount``
  (tardis.dev CSV datasets, epoch microseconds; these files do have this header).

``--columns ts,price,size`` names the columns of any other header-less file the same way. A
file whose first line is exactly the layout's names (Binance's newer files, Tardis) has that line
taken as its header; any other first line is data.

Compression follows the last suffix: ``.gz``, ``.bz2``, ``.xz``, ``.zst``/``.zstd``; files are
decompressed while they are read, never unpacked whole.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import pyarrow as pa

from ...errors import UsageError
from ..base import TickKind

COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zstd")


@dataclass(frozen=True, slots=True)
class Layout:
    """Column names of files that may lack a header line, and the kind they hold (if known)."""

    names: tuple[str, ...]
    kind: TickKind | None = None


PRESETS: dict[str, Layout] = {
    "binance-aggtrades": Layout(
        (
            "agg_trade_id",
            "price",
            "quantity",
            "first_trade_id",
            "last_trade_id",
            "transact_time",
            "is_buyer_maker",
            "is_best_match",
        ),
        "trades",
    ),
    "binance-klines": Layout(
        (
            "open_time",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "close_time",
            "quote_volume",
            "count",
            "taker_buy_volume",
            "taker_buy_quote_volume",
            "ignore",
        ),
        "bars",
    ),
    "tardis-trades": Layout(
        ("exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount"),
        "trades",
    ),
}


def layout_for(preset: str | None, columns: str | None) -> Layout | None:
    """Return the layout ``--format`` or ``--columns`` asks for (not both), or None."""
    if preset is not None and columns is not None:
        raise UsageError("--format and --columns both name the columns: give one of them")
    if preset is not None:
        if preset not in PRESETS:
            raise UsageError(f"unknown --format {preset!r}: expected one of {', '.join(PRESETS)}")
        return PRESETS[preset]
    if columns is None:
        return None
    names = tuple(part.strip() for part in columns.split(","))
    if not all(names) or len(set(names)) != len(names):
        raise UsageError(f"bad --columns {columns!r}: expected distinct names, e.g. ts,price,size")
    return Layout(names)


def is_header(fields: list[str], layout: Layout) -> bool:
    """True when a first line's ``fields`` are the layout's own names (a header, not data)."""
    return [f.strip().lower() for f in fields] == [n.lower() for n in layout.names]


def compression(path: Path) -> str | None:
    """Return the compression a file's last suffix names (``gz``, ``bz2``, ``xz``, ``zst``)."""
    suffix = path.suffix.lower()
    if suffix not in COMPRESSED_SUFFIXES:
        return None
    return "zst" if suffix == ".zstd" else suffix[1:]


def open_binary(path: Path) -> IO[bytes]:
    """Open ``path`` for reading, decompressing on the fly by its suffix."""
    kind = compression(path)
    if kind == "gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    if kind == "bz2":
        return cast(IO[bytes], bz2.open(path, "rb"))
    if kind == "xz":
        return cast(IO[bytes], lzma.open(path, "rb"))
    if kind == "zst":
        return cast(IO[bytes], pa.CompressedInputStream(pa.OSFile(str(path)), "zstd"))
    return path.open("rb")


def input_stream(path: Path) -> Any:
    """Return an Arrow input stream of the decompressed bytes of ``path``."""
    kind = compression(path)
    if kind in ("xz",):
        return pa.PythonFile(open_binary(path), mode="r")
    codec = {"gz": "gzip", "bz2": "bz2", "zst": "zstd"}.get(kind or "")
    return pa.input_stream(str(path), compression=codec)
