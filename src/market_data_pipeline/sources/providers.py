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
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

import polars as pl

from .. import frames
from ..errors import ProviderError, UsageError
from ..urls import mask_urls
from .base import SourceInfo, TickKind, TickSource

if TYPE_CHECKING:
    from ..core import Instrument, Quote, Trade

ENTRY_POINT_GROUP = "market_data_pipeline.providers"
DEFAULT_BATCH_SIZE = 1_000
DEFAULT_BATCH_INTERVAL_S = 0.2

Item = TypeVar("Item")


class StreamingProvider(Protocol):
    """What the source calls on a provider: Core's ``MarketDataProvider`` as providers write it.

    Core declares the streams as ``async def`` returning an ``AsyncIterable`` (a coroutine to
    await), while providers write them as async generators (called, then iterated): the source
    iterates what the call returns, so this protocol says exactly that. Only the stream of the
    run's kind is called.
    """

    def stream_trades(self, instruments: Iterable[Instrument], /) -> AsyncIterable[Trade]: ...

    def stream_quotes(self, instruments: Iterable[Instrument], /) -> AsyncIterable[Quote]: ...


@runtime_checkable
class ProviderSession(Protocol):
    """A provider that connects in ``__aenter__`` (returning itself) and leaves in ``__aexit__``."""

    async def __aenter__(self) -> StreamingProvider: ...

    async def __aexit__(self, *exc_info: object) -> object: ...


ProviderFactory = Callable[..., StreamingProvider]


def provider_factory(name: str) -> ProviderFactory:
    """Return the factory registered under ``name``; ``UsageError`` lists the known names."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise UsageError(f"no market-data provider {name!r} (known: {known})")
    try:
        factory: ProviderFactory = found[name].load()
    except ImportError as exc:
        raise UsageError(f"provider {name!r} cannot be loaded: {exc}") from None
    return factory


def ibkr_provider(**options: object) -> StreamingProvider:
    """Build ``market-data-ibkr``'s ``IBKRProvider`` from ``IBKRSettings`` options."""
    try:
        from market_data_ibkr import IBKRProvider, IBKRSettings
    except ImportError:
        raise UsageError(
            "--source provider:ibkr needs market-data-ibkr: pip install market-data-ibkr"
        ) from None
    provider: StreamingProvider = IBKRProvider(IBKRSettings(**options))
    return provider


class ProviderSource(TickSource):
    """Ticks from a Core ``MarketDataProvider`` (see the module docstring)."""

    def __init__(
        self,
        name: str,
        *,
        symbols: list[str],
        kind: TickKind = "trades",
        options: Mapping[str, object] | None = None,
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
        self._session: ProviderSession | None = None  # entered, so close() leaves it

    def describe(self) -> SourceInfo:
        """Return what the run summary shows about this source."""
        info = super().describe()
        info["label"] = f"provider {self.name} {self.kind}"
        info["symbols"] = self.symbols
        return info

    async def batches(self) -> AsyncIterator[pl.DataFrame]:
        """Yield frames of the provider's ticks until it ends."""
        from .. import core

        try:
            provider = await self._open()
            instruments = [core.Instrument(symbol=s) for s in self.symbols]
            if self.kind == "trades":
                framed = self._framed(provider.stream_trades(instruments), _trades_frame)
            else:
                framed = self._framed(provider.stream_quotes(instruments), _quotes_frame)
            async for frame in framed:
                yield self._priced(frame)
        except (UsageError, ProviderError, GeneratorExit):
            raise
        except Exception as exc:  # the provider's own errors (Core ConnectionFailed ...)
            raise self._error(exc) from None

    async def _open(self) -> StreamingProvider:
        try:
            provider = self._factory(**self._options)
        except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            detail = _first_line(exc)
            raise UsageError(f"bad options for provider {self.name!r}: {detail}") from None
        if isinstance(provider, ProviderSession):
            entered = await provider.__aenter__()
            self._session = provider
            return entered
        return provider

    async def _framed(
        self, items: AsyncIterable[Item], to_frame: Callable[[list[Item]], pl.DataFrame]
    ) -> AsyncIterator[pl.DataFrame]:
        """Yield frames of up to ``batch_size`` items, or of what came within the interval."""
        rows: list[Item] = []
        last = time.monotonic()
        async for item in items:
            rows.append(item)
            now = time.monotonic()
            if len(rows) >= self.batch_size or now - last >= self.batch_interval_s:
                yield to_frame(rows)
                rows, last = [], now
        if rows:
            yield to_frame(rows)

    def _priced(self, frame: pl.DataFrame) -> pl.DataFrame:
        unpriced = frame["price"].is_null()
        if unpriced.any():
            self.count_bad("no bid/ask", int(unpriced.sum()))
            frame = frame.filter(~unpriced)
        return frame

    def _error(self, exc: Exception) -> ProviderError:
        return ProviderError(f"provider {self.name}: {type(exc).__name__}: {_first_line(exc)}")

    async def close(self) -> None:
        """Leave the provider's session; safe to call more than once."""
        session, self._session = self._session, None
        if session is not None:
            with contextlib.suppress(Exception):  # a session that never opened
                await session.__aexit__(None, None, None)


def _trades_frame(trades: list[Trade]) -> pl.DataFrame:
    data = {
        "symbol": [t.symbol for t in trades],
        "ts_ns": [frames.datetime_to_ns(t.ts) for t in trades],
        "price": [float(t.price) for t in trades],
        "size": [float(t.size) for t in trades],
    }
    return pl.DataFrame(data, schema=frames.TICK_SCHEMA)


def _quotes_frame(quotes: list[Quote]) -> pl.DataFrame:
    """Quotes as ticks at the mid price (null without both sides: counted bad by the source)."""
    data = {
        "symbol": [q.symbol for q in quotes],
        "ts_ns": [frames.datetime_to_ns(q.timestamp) for q in quotes],
        "price": [_mid(q) for q in quotes],
        "size": [0.0] * len(quotes),
    }
    return pl.DataFrame(data, schema=frames.TICK_SCHEMA)


def _mid(quote: Quote) -> float | None:
    if quote.bid is None or quote.ask is None:
        return None
    return (float(quote.bid) + float(quote.ask)) / 2


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return mask_urls(text[0] if text else type(exc).__name__)
