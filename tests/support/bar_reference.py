"""A brute-force bar builder: one item at a time, plain Python, the rules written out literally.

Items are ticks or input bars in arrival order. For each item and resolution: the item is late if
its window end <= (the symbol's max ts seen before it) - grace; otherwise it is folded into its
window. After each item, every window with end <= max ts of its symbol - grace is emitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Item:
    symbol: str
    ts_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    pv: float | None
    trades: int | None


def tick(symbol: str, ts_ns: int, price: float, size: float) -> Item:
    return Item(symbol, ts_ns, price, price, price, price, size, price * size, 1)


def input_bar(row: dict[str, Any]) -> Item:
    """One row of a bar input frame (``frame.iter_rows(named=True)``) as a reference item."""
    volume = float(row["volume"])
    vwap = row["vwap"]
    pv = 0.0 if volume == 0 else (None if vwap is None else float(vwap) * volume)
    return Item(
        str(row["symbol"]),
        int(row["ts_ns"]),
        float(row["open"]),
        float(row["high"]),
        float(row["low"]),
        float(row["close"]),
        volume,
        pv,
        row["trades"],
    )


@dataclass
class Window:
    open: float
    open_ts: int
    high: float
    low: float
    close: float
    close_ts: int
    volume: float
    pv: float | None
    trades: int | None
    items: int

    def add(self, item: Item) -> None:
        if item.ts_ns < self.open_ts:  # ties keep the earlier arrival
            self.open, self.open_ts = item.open, item.ts_ns
        if item.ts_ns >= self.close_ts:  # ties take the later arrival
            self.close, self.close_ts = item.close, item.ts_ns
        self.high = max(self.high, item.high)
        self.low = min(self.low, item.low)
        self.volume += item.volume
        self.pv = None if self.pv is None or item.pv is None else self.pv + item.pv
        self.trades = (
            None if self.trades is None or item.trades is None else self.trades + item.trades
        )
        self.items += 1


def new_window(item: Item) -> Window:
    return Window(
        item.open,
        item.ts_ns,
        item.high,
        item.low,
        item.close,
        item.ts_ns,
        item.volume,
        item.pv,
        item.trades,
        1,
    )


BarKey = tuple[str, str, int]  # resolution label, symbol, window start


class ReferenceEngine:
    def __init__(self, resolutions: list[tuple[str, int]], grace_ns: int) -> None:
        self.resolutions = resolutions
        self.grace_ns = grace_ns
        self.max_ts: dict[str, int] = {}
        self.open: dict[BarKey, Window] = {}
        self.open_keys: dict[str, set[BarKey]] = {}  # per symbol, so closing scans only its own
        self.late = {label: 0 for label, _ in resolutions}
        self.items_in = 0

    def add(self, items: list[Item]) -> dict[BarKey, Window]:
        """Fold items in one by one; return the windows closed meanwhile."""
        closed: dict[BarKey, Window] = {}
        for item in items:
            self.items_in += 1
            prior = self.max_ts.get(item.symbol)
            for label, ns in self.resolutions:
                start = item.ts_ns - item.ts_ns % ns
                if prior is not None and start + ns <= prior - self.grace_ns:
                    self.late[label] += 1
                    continue
                key = (label, item.symbol, start)
                assert key not in closed
                if key in self.open:
                    self.open[key].add(item)
                else:
                    self.open[key] = new_window(item)
                    self.open_keys.setdefault(item.symbol, set()).add(key)
            self.max_ts[item.symbol] = item.ts_ns if prior is None else max(prior, item.ts_ns)
            closed.update(self._close(item.symbol))
        return closed

    def flush(self) -> dict[BarKey, Window]:
        closed, self.open, self.open_keys = self.open, {}, {}
        return closed

    def _close(self, symbol: str) -> dict[BarKey, Window]:
        mark = self.max_ts[symbol] - self.grace_ns
        ns_of = dict(self.resolutions)
        keys = self.open_keys.get(symbol, set())
        done = {key: self.open[key] for key in keys if key[2] + ns_of[key[0]] <= mark}
        for key in done:
            del self.open[key]
            keys.discard(key)
        return done


def as_bars(windows: dict[BarKey, Window]) -> dict[BarKey, dict[str, object]]:
    """Render windows as bar rows keyed like the engine output (vwap null when volume is 0)."""
    out: dict[BarKey, dict[str, object]] = {}
    for key, w in windows.items():
        vwap = None if w.volume <= 0 or w.pv is None else w.pv / w.volume
        out[key] = {
            "open": w.open,
            "high": w.high,
            "low": w.low,
            "close": w.close,
            "volume": w.volume,
            "vwap": vwap,
            "trades": w.trades,
            "end_ts_ns": None,  # time bars: the window ends at ts + resolution
            "incomplete": False,
        }
    return out
