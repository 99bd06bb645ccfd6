"""A deterministic generator of random-walk trades or quotes for any number of symbols.

Tick ``i`` (counted from 0 over all symbols) belongs to ``symbols[i % len(symbols)]`` and has event
time ``start_ns + floor(i * 1e9 / rate)`` (1 ms apart when ``rate`` is None). The source does not
pace itself: the rate gate does; ``rate`` only spaces event times.

Prices follow a geometric random walk per symbol (so they stay positive), rounded to cents and
floored at one cent. Quotes put bid and ask 1-5 cents either side of a random-walk mid; their
``price`` is ``(bid + ask) / 2`` and ``size`` 0. The same ``seed`` and ``start_ns`` give the same
frames, whatever ``batch_size`` is, in every call of ``batches()``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np
import polars as pl

from ..errors import UsageError
from .base import SourceInfo, TickKind, TickSource

DEFAULT_BATCH_SIZE = 4096
DEFAULT_SPACING_NS = 1_000_000
TICK_VOLATILITY = 2e-4  # standard deviation of the log return per tick
CENT = 0.01


class SyntheticSource(TickSource):
    """Generate ``ticks`` ticks (None: without end) in frames of ``batch_size`` rows."""

    continuous = True

    def __init__(
        self,
        *,
        symbols: list[str],
        seed: int = 0,
        kind: TickKind = "trades",
        rate: float | None = None,
        ticks: int | None = None,
        start_ns: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        provider: str = "synthetic",
    ) -> None:
        _check(symbols, kind, rate, ticks, batch_size)
        super().__init__(provider, kind)
        self.symbols = list(symbols)
        self.seed = seed
        self.rate = rate
        self.ticks = ticks
        self.start_ns = start_ns if start_ns is not None else time.time_ns() // 10**9 * 10**9
        self.batch_size = batch_size
        self.spacing_ns = 1e9 / rate if rate is not None else float(DEFAULT_SPACING_NS)

    @property
    def base_rate(self) -> float | None:
        """The target rate (``rate``) the gate scales under backpressure."""
        return self.rate

    def describe(self) -> SourceInfo:
        """Return kind, symbols and seed: the same seed and start give the same ticks."""
        info = super().describe()
        info["label"] = f"synthetic {self.kind}, {len(self.symbols)} symbols, seed {self.seed}"
        info["symbols"] = list(self.symbols)
        info["seed"] = self.seed
        return info

    async def batches(self) -> AsyncIterator[pl.DataFrame]:
        """Yield frames of ticks, from the first tick again on every call."""
        walk = _Walk(self.symbols, self.seed, self.kind)
        done = 0
        while self.ticks is None or done < self.ticks:
            rows = (
                self.batch_size if self.ticks is None else min(self.batch_size, self.ticks - done)
            )
            yield self._frame(walk, done, rows)
            done += rows
            await asyncio.sleep(0)  # an unbounded source must still let the loop run

    def _frame(self, walk: _Walk, first: int, rows: int) -> pl.DataFrame:
        index = np.arange(first, first + rows, dtype=np.int64)
        ts_ns = self.start_ns + np.floor(index * self.spacing_ns).astype(np.int64)
        symbol_idx = pl.Series(index % len(self.symbols), dtype=pl.UInt32)
        symbols = walk.names.gather(symbol_idx)
        mid = walk.step(first, rows)
        if self.kind == "trades":
            return pl.DataFrame(
                {"symbol": symbols, "ts_ns": ts_ns, "price": mid, "size": walk.sizes(rows)}
            )
        bid, ask, bid_size, ask_size = walk.quote(mid, rows)
        return pl.DataFrame(
            {
                "symbol": symbols,
                "ts_ns": ts_ns,
                "price": (bid + ask) / 2,
                "size": np.zeros(rows),
                "bid": bid,
                "ask": ask,
                "bid_size": bid_size,
                "ask_size": ask_size,
            }
        )


class _Walk:
    """Random state of one run: a log-price per symbol and one stream per random quantity.

    Separate streams keep the output independent of batch size: each stream is drawn in order.
    """

    def __init__(self, symbols: list[str], seed: int, kind: TickKind) -> None:
        streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)]
        self._moves, self._sizes, self._spreads, self._depth, starts = streams
        self.names = pl.Series("symbol", symbols, dtype=pl.String)
        start = starts.uniform(20, 500, len(symbols))
        self._log_price = np.log(np.round(start, 2))

    def step(self, first: int, rows: int) -> np.ndarray:
        """Advance every symbol's walk over ticks ``first .. first + rows`` (round robin)."""
        n = len(self._log_price)
        offset = first % n
        width = -(-(offset + rows) // n) * n
        # Lay the ticks out as rounds of n so a cumulative sum down axis 0 walks each symbol.
        moves = np.zeros(width)
        moves[offset : offset + rows] = self._moves.standard_normal(rows) * TICK_VOLATILITY
        paths = np.cumsum(moves.reshape(-1, n), axis=0) + self._log_price
        self._log_price = paths[-1].copy()
        prices = np.exp(paths.reshape(-1)[offset : offset + rows])
        return np.maximum(np.round(prices, 2), CENT)

    def sizes(self, rows: int) -> np.ndarray:
        """Draw trade sizes (1 to 999 shares)."""
        return _whole(self._sizes, 1, 1000, rows)

    def quote(self, mid: np.ndarray, rows: int) -> tuple[np.ndarray, ...]:
        """Draw bid, ask and their sizes around ``mid``."""
        half = _whole(self._spreads, 1, 6, rows) * CENT
        bid = np.maximum(np.round(mid - half, 2), CENT)
        ask = np.round(bid + 2 * half, 2)
        depth = _whole(self._depth, 1, 50, 2 * rows).reshape(rows, 2) * 100
        return bid, ask, depth[:, 0], depth[:, 1]


def _whole(rng: np.random.Generator, low: int, high: int, rows: int) -> np.ndarray:
    """Draw whole numbers in [low, high) as floats; one draw each keeps batches independent."""
    return np.floor(rng.random(rows) * (high - low)) + low


def _check(
    symbols: list[str], kind: str, rate: float | None, ticks: int | None, batch_size: int
) -> None:
    if not symbols or any(not s for s in symbols):
        raise UsageError("symbols must be a non-empty list of non-empty names")
    if kind not in ("trades", "quotes"):
        raise UsageError(f"synthetic kind must be trades or quotes, not {kind!r}")
    if rate is not None and not rate > 0:
        raise UsageError(f"rate must be > 0, not {rate}")
    if ticks is not None and ticks < 0:
        raise UsageError(f"ticks must be >= 0, not {ticks}")
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, not {batch_size}")
