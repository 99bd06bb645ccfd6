"""Shared helpers for the source tests: collect a source's frames, write small input files."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from market_data_pipeline.sources.base import TickSource


async def collect(source: TickSource) -> pl.DataFrame:
    """Return every frame of ``source`` concatenated (an empty frame when there are none)."""
    frames = [frame async for frame in source.batches()]
    return pl.concat(frames) if frames else pl.DataFrame()


def write_text(path: Path, text: str) -> Path:
    """Write ``text`` (dedented lines) to ``path`` and return it."""
    path.write_text("\n".join(line.strip() for line in text.strip().splitlines()) + "\n")
    return path
