"""Activity bars the slow way: per symbol, one tick at a time, the definition written out.

Per symbol, in arrival order: a tick is late when its event time lies below (the max event
time of the symbol's earlier ticks) - grace. The other ticks, stably sorted by event time, add
to a running count / volume / value; the tick at which it reaches the threshold closes the bar.
Whatever has not reached it at the end is an incomplete bar. A bar's ts is its first tick's
microsecond, at least 1 us after the previous bar's.
"""

from __future__ import annotations

from dataclasses import dataclass

US = 1_000


@dataclass
class RefTick:
    symbol: str
    ts_ns: int
    price: float
    size: float


def reference_bars(
    ticks: list[RefTick], unit: str, threshold: float, grace_ns: int, label: str
) -> tuple[list[dict[str, object]], int]:
    """Return (bars sorted by symbol then ts, late tick count)."""
    by_symbol: dict[str, list[RefTick]] = {}
    late = 0
    high: dict[str, int] = {}
    for tick in ticks:
        prior = high.get(tick.symbol)
        if prior is not None and tick.ts_ns < prior - grace_ns:
            late += 1
            continue
        high[tick.symbol] = tick.ts_ns if prior is None else max(prior, tick.ts_ns)
        by_symbol.setdefault(tick.symbol, []).append(tick)
    bars: list[dict[str, object]] = []
    for symbol in sorted(by_symbol):
        ordered = sorted(by_symbol[symbol], key=lambda t: t.ts_ns)  # stable: ties by arrival
        current: list[RefTick] = []
        total = 0.0
        previous_ts: int | None = None
        for tick in ordered:
            current.append(tick)
            total += {"tick": 1.0, "volume": tick.size, "value": tick.price * tick.size}[unit]
            if total >= threshold:
                previous_ts = _append(bars, symbol, label, current, previous_ts, False)
                current, total = [], 0.0
        if current:
            _append(bars, symbol, label, current, previous_ts, True)
    return bars, late


def _append(
    bars: list[dict[str, object]],
    symbol: str,
    label: str,
    ticks: list[RefTick],
    previous_ts: int | None,
    incomplete: bool,
) -> int:
    first = ticks[0].ts_ns - ticks[0].ts_ns % US
    ts = first if previous_ts is None else max(first, previous_ts + US)
    volume = sum(t.size for t in ticks)
    pv = sum(t.price * t.size for t in ticks)
    bars.append(
        {
            "symbol": symbol,
            "resolution": label,
            "ts_ns": ts,
            "open": ticks[0].price,
            "high": max(t.price for t in ticks),
            "low": min(t.price for t in ticks),
            "close": ticks[-1].price,
            "volume": volume,
            "vwap": pv / volume if volume > 0 else None,
            "trades": len(ticks),
            "end_ts_ns": ticks[-1].ts_ns,
            "incomplete": incomplete,
        }
    )
    return ts
