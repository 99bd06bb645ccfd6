"""A brute-force bar builder with allowed lateness: one item at a time, the rules written out.

For each item and resolution, with ``limit`` = (the symbol's max ts seen before it) - grace: the
item is in time when its window end > limit; it revises its (closed) window when
end <= limit < end + lateness, and the window's bar is written again; otherwise it is late and
kept aside with the resolutions it missed. After each item, every open window with
end <= max ts - grace is written and retained; retained windows with
end + lateness <= max ts - grace are forgotten. A bar's revision counts its earlier writes.
"""

from __future__ import annotations

from bar_reference import BarKey, Item, Window, as_bars, new_window


class LateReference:
    def __init__(self, resolutions: list[tuple[str, int]], grace_ns: int, lateness_ns: int) -> None:
        self.resolutions = resolutions
        self.grace_ns = grace_ns
        self.lateness_ns = lateness_ns
        self.max_ts: dict[str, int] = {}
        self.open: dict[BarKey, Window] = {}
        self.retained: dict[BarKey, Window] = {}
        self.table: dict[BarKey, tuple[Window, int]] = {}  # last write and its revision
        self.revised: set[BarKey] = set()  # windows that took a revising item
        self.late: list[tuple[str, int, str]] = []  # symbol, ts_ns, resolutions missed
        self.revising = {label: 0 for label, _ in resolutions}
        self.writes = 0

    def add(self, items: list[Item]) -> None:
        for item in items:
            self._add(item)

    def _add(self, item: Item) -> None:
        prior = self.max_ts.get(item.symbol)
        missed = []
        for label, ns in self.resolutions:
            start = item.ts_ns - item.ts_ns % ns
            key = (label, item.symbol, start)
            limit = None if prior is None else prior - self.grace_ns
            if limit is None or start + ns > limit:
                window = self.open.get(key)
                if window is None:
                    self.open[key] = new_window(item)
                else:
                    window.add(item)
            elif start + ns + self.lateness_ns > limit:
                assert key not in self.open
                window = self.retained.get(key)
                if window is None:
                    window = self.retained[key] = new_window(item)
                else:
                    window.add(item)
                self.revised.add(key)
                self.revising[label] += 1
                self._write(key, window)
            else:
                missed.append(label)
        if missed:
            self.late.append((item.symbol, item.ts_ns, ",".join(missed)))
        self.max_ts[item.symbol] = item.ts_ns if prior is None else max(prior, item.ts_ns)
        self._close(item.symbol)

    def _close(self, symbol: str) -> None:
        mark = self.max_ts[symbol] - self.grace_ns
        ns_of = dict(self.resolutions)
        for key in [k for k in self.open if k[1] == symbol and k[2] + ns_of[k[0]] <= mark]:
            self.retained[key] = self.open.pop(key)
            self._write(key, self.retained[key])
        for key in [k for k in self.retained if k[1] == symbol]:
            if key[2] + ns_of[key[0]] + self.lateness_ns <= mark:
                del self.retained[key]

    def _write(self, key: BarKey, window: Window) -> None:
        before = self.table.get(key)
        revision = 0 if before is None else before[1] + 1
        copy = Window(**vars(window))
        self.table[key] = (copy, revision)
        self.writes += 1

    def flush(self) -> None:
        for key, window in self.open.items():
            self._write(key, window)
        self.open, self.retained = {}, {}

    def bars(self) -> dict[BarKey, dict[str, object]]:
        """The final table: every bar as last written, with its revision."""
        rows = as_bars({key: window for key, (window, _) in self.table.items()})
        return {key: {**row, "revision": self.table[key][1]} for key, row in rows.items()}
