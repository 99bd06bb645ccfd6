"""Resolution labels beyond time widths: activity thresholds and quote price types.

Activity bars close on what traded, not on the clock. Their labels end in a whole word, so no
label can be read as a time width (``m``, ``mo``, ``ms``, ``min`` ...) or as another library's
time alias (pandas' ``T`` is a minute, so ``1000t`` would be ambiguous)::

    1000tick       a bar every 1,000 ticks (trades, or quotes)
    100000volume   a bar every 100,000 units traded (sum of sizes)
    1000000value   a bar every 1,000,000 of traded value (sum of price x size)

Thresholds may be written ``1e6value``, ``1_000_000value`` or nautilus_trader's ``1000-TICK``,
``10000-VOLUME``, ``1000000-VALUE``; the stored label is always the plain form above (digits,
a decimal point only for a fractional threshold).

A price type follows a colon and picks which price a resolution's bars are made of:
``:bid``, ``:ask`` or ``:mid`` (quotes) and ``:last`` (trades). Without one a resolution takes
the input's own price (the last trade price, or the quote mid), so ``1m:mid`` of quotes and
``1m:last`` of trades are stored as plain ``1m``; bid and ask bars are stored as ``1m:bid`` and
``1m:ask``, beside the mid bars of the same symbol and width under the same primary key.
"""

from __future__ import annotations

import re

from ..errors import UsageError

ACTIVITY_UNITS = ("tick", "volume", "value")
PRICE_TYPES = ("bid", "ask", "mid", "last")
QUOTE_PRICES = ("bid", "ask", "mid")
_ALIASES = {"tick": "tick", "ticks": "tick", "volume": "volume", "value": "value"}
_ACTIVITY = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9]+)?(?:e[0-9]+)?)\s*-?\s*([a-z]+)\s*$")


def split_price(text: str) -> tuple[str, str]:
    """Split ``"1m:bid"`` into ``("1m", "bid")``; ``("1m", "")`` without a price type."""
    if ":" not in text:
        return text, ""
    base, price = text.rsplit(":", 1)
    price = price.strip().lower()
    if price not in PRICE_TYPES:
        raise UsageError(
            f"bad resolution {text.strip()!r}: unknown price type {price!r};"
            f" use {', '.join(PRICE_TYPES)} (e.g. 1m:bid)"
        )
    return base, price


def price_suffix(price: str) -> str:
    """Return the label suffix of a price type: ``":bid"``/``":ask"``, none for mid and last."""
    return f":{price}" if price in ("bid", "ask") else ""


def stored_label(text: str) -> str:
    """Return the stored label of a resolution as typed (``1000-TICK`` -> ``1000tick``,
    ``1m:BID`` -> ``1m:bid``); text that is no resolution (``1d@XNYS``) as it is."""
    from .resolution import parse_resolution

    try:
        return parse_resolution(text).label
    except UsageError:
        return text.strip()


def parse_activity(text: str) -> tuple[float, str, str] | None:
    """Return ``(threshold, unit, canonical label)`` of an activity resolution, or None when
    ``text`` is not one (then it is read as a time width)."""
    match = _ACTIVITY.match(text.lower())
    if match is None or match.group(2) not in _ALIASES:
        return None
    unit = _ALIASES[match.group(2)]
    try:
        threshold = float(match.group(1).replace("_", ""))
    except ValueError:
        return None
    if not threshold > 0 or threshold == float("inf"):
        raise UsageError(f"bad resolution {text.strip()!r}: the threshold must be above zero")
    if unit == "tick" and not threshold.is_integer():
        raise UsageError(f"bad resolution {text.strip()!r}: a tick count is a whole number")
    number = str(int(threshold)) if threshold.is_integer() else repr(threshold)
    return threshold, unit, f"{number}{unit}"
