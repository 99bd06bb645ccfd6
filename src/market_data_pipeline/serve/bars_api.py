"""``/v1/bars``: what the stores hold, and the bars of one symbol and resolution for the chart."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI

from ..errors import SinkSetupError
from ..isotime import iso_time_ns
from ..sinks import Selection, read_bars, read_selection
from ..urls import redact_url
from .chart import chart_points
from .guards import ForbiddenError, ServeConfig

MAX_POINTS = 20_000  # the latest bars of a series the chart gets at most (the store's LIMIT)


def bars_routes(app: FastAPI, config: ServeConfig, auth: list[Any]) -> None:
    @app.get("/v1/bars/series", dependencies=auth)
    async def series(sink: str | None = None) -> dict[str, Any]:
        url = _sink(config, sink)
        return {"sink": redact_url(url), "series": await asyncio.to_thread(_series, url)}

    @app.get("/v1/bars", dependencies=auth)
    async def bars(
        symbol: str,
        resolution: str,
        sink: str | None = None,
        start: str | None = None,
        end: str | None = None,
        limit: int = MAX_POINTS,
    ) -> dict[str, Any]:
        url = _sink(config, sink)
        selection = Selection(
            symbol,
            resolution,
            start_ns=None if start is None else iso_time_ns(start, "start"),
            end_ns=None if end is None else iso_time_ns(end, "end"),
            limit=max(0, min(limit, MAX_POINTS)),
        )
        points = await asyncio.to_thread(_points, url, selection)
        return {"symbol": symbol, "resolution": resolution, "bars": points}


def _sink(config: ServeConfig, given: str | None) -> str:
    """The sink to read: the default, or one named by its URL as shown (password masked)."""
    if given is None:
        return config.default_sink
    for url in config.sinks:
        if given in (url, redact_url(url)):
            return url
    raise ForbiddenError(f"sink {redact_url(given)!r} is not one this service writes to")


def _stored(url: str) -> Any:
    """Every bar the store holds; None while it has none (no file or table until a run writes)."""
    try:
        return read_bars(url)
    except SinkSetupError:
        return None


def _series(url: str) -> list[dict[str, Any]]:
    import polars as pl

    frame = _stored(url)
    if frame is None:
        return []
    counts = (
        frame.group_by("symbol", "resolution")
        .agg(pl.len().alias("bars"))
        .sort("symbol", "resolution")
    )
    return list(counts.iter_rows(named=True))


def _points(url: str, selection: Selection) -> list[dict[str, Any]]:
    try:
        frame = read_selection(url, selection)
    except SinkSetupError:  # no file or table until a run writes
        return []
    return chart_points(frame)
