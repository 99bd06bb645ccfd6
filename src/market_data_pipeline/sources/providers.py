"""Core ``MarketDataProvider`` implementations as sources (``--source provider:NAME``).

A provider is found by name in the entry-point group ``market_data_pipeline.providers``; the
entry point is a factory called with the provider options (``--provider-option KEY=VALUE``) that
returns a Core ``MarketDataProvider``. This package registers ``ibkr`` (``market-data-ibkr``'s
``IBKRProvider``, options as its ``IBKRSettings``: host, port, client_id ...); another package
registers its own provider the same way::

    [project.entry-points."market_data_pipeline.providers"]
    mine = "my_package.provider:make_provider"

The source streams ``stream_trades`` (or ``stream_quotes`` with ``--kind quotes``) for the run's
symbols and hands the Core models on in frames of up to ``batch_size`` ticks, or whatever came
within ``batch_interval_s``. Any failure of the provider (Core's ``ConnectionFailed``, a refused
socket, bad settings) ends the run with one line naming the provider and the cause.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import polars as pl

from .. import frames
from ..errors import ProviderError, UsageError
from ..sinks.urls import mask_urls
from .base import SourceInfo, TickKind, TickSource

if TYPE_CHECKING:
    from ..core import Quote

ENTRY_POINT_GROUP = "market_data_pipeline.providers"
DEFAULT_BATCH_SIZE = 1_000
DEFAULT_BATCH_INTERVAL_S = 0.2


def provider_factory(name: str) -> Callable[..., Any]:
    """Return the factory registered under ``name``; ``UsageError`` lists the known names."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise UsageError(f"no market-data provider {name!r} (known: {known})")
    try:
        factory: Callable[..., Any] = found[name].load()
    except ImportError as exc:
        raise UsageError(f"provider {name!r} cannot be loaded: {exc}") from None
    return factory


def ibkr_provider(**options: Any) -> Any:
    """Build ``market-data-ibkr``'s ``IBKRProvider`` from ``IBKRSettings`` options."""
    try:
        from market_data_ibkr import IBKRProvider, IBKRSettings
    except ImportError:
        raise UsageError(
            "--source provider:ibkr needs market-data-ibkr: pip install market-data-ibkr"
        ) from None
    return IBKRProvider(IBKRSettings(**options))


class ProviderSource(TickSource):
    """Ticks from a Core ``MarketDataProvider`` (see the module docstring)."""

    def __init__(
        self,
        name: str,
        *,
        symbols: list[str],
        kind: TickKind = "trades",
        options: Mapping[str, Any] | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_interval_s: float = DEFAULT_BATCH_INTERVAL_S,
    ) -> None:
        if kind not in ("trades", "quotes"):
            raise UsageError(f"a provider streams trades or quotes, not {kind}")
        if not symbols:
            raise UsageError("--source provider:NAME needs --symbols")
        super().__init__(name, kind)
        self.name = name
        self.symbols = list(symbols)
        self.batch_size = batch_size
        self.batch_interval_s = batch_interval_s
        self._factory = provider_factory(name)
        self._options = dict(options or {})
        self._provider: Any = None

    def describe(self) -> SourceInfo:
        """Return what the run summary shows about this source."""
        info = super().describe()
        info["label"] = f"provider {self.name} {self.kind}"
        info["symbols"] = self.symbols
        return info

    async def batches(self) -> AsyncIterator[pl.DataFrame]:
        """Yield frames of the provider's ticks until it ends."""
        try:
            items = await self._open()
            rows: list[Any] = []
            last = time.monotonic()
            async for item in items:
                rows.append(item)
                now = time.monotonic()
                if len(rows) >= self.batch_size or now - last >= self.batch_interval_s:
                    yield self._frame(rows)
                    rows, last = [], now
            if rows:
                yield self._frame(rows)
        except (UsageError, ProviderError, GeneratorExit):
            raise
        except Exception as exc:  # the provider's own errors (Core ConnectionFailed ...)
            raise self._error(exc) from None

    async def _open(self) -> Any:
        from .. import core

        try:
            provider = self._factory(**self._options)
        except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            detail = _first_line(exc)
            raise UsageError(f"bad options for provider {self.name!r}: {detail}") from None
        if hasattr(provider, "__aenter__"):
            provider = await provider.__aenter__()
        self._provider = provider
        instruments = [core.Instrument(symbol=s) for s in self.symbols]
        method = provider.stream_trades if self.kind == "trades" else provider.stream_quotes
        return method(instruments)

    def _frame(self, items: list[Any]) -> pl.DataFrame:
        if self.kind == "trades":
            data = {
                "symbol": [t.symbol for t in items],
                "ts_ns": [frames.datetime_to_ns(t.ts) for t in items],
                "price": [float(t.price) for t in items],
                "size": [float(t.size) for t in items],
            }
        else:
            data = {
                "symbol": [q.symbol for q in items],
                "ts_ns": [frames.datetime_to_ns(q.timestamp) for q in items],
                "price": [_mid(q) for q in items],
                "size": [0.0] * len(items),
            }
        frame = pl.DataFrame(data, schema=frames.TICK_SCHEMA)
        unpriced = frame["price"].is_null()
        if unpriced.any():
            self.count_bad("no bid/ask", int(unpriced.sum()))
            frame = frame.filter(~unpriced)
        return frame

    def _error(self, exc: Exception) -> ProviderError:
        return ProviderError(f"provider {self.name}: {type(exc).__name__}: {_first_line(exc)}")

    async def close(self) -> None:
        """Leave the provider's session; safe to call more than once."""
        provider, self._provider = self._provider, None
        if provider is not None and hasattr(provider, "__aexit__"):
            with contextlib.suppress(Exception):  # a session that never opened
                await provider.__aexit__(None, None, None)


def _mid(quote: Quote) -> float | None:
    if quote.bid is None or quote.ask is None:
        return None
    return (float(quote.bid) + float(quote.ask)) / 2


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return mask_urls(text[0] if text else type(exc).__name__)
