"""The gap tracker against a brute-force scan of every minute between a symbol's bars."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from market_data_pipeline.aggregation.calendars import TimeFrame, Windows, make_windows
from market_data_pipeline.aggregation.gaps import GapTracker
from market_data_pipeline.aggregation.resolution import parse_resolution
from market_data_pipeline.frames import BAR_SCHEMA

MINUTE_NS = 60 * 10**9
# 2024-11-25 .. 2024-12-04: Thanksgiving, the early close, a weekend.
SCAN_FROM = int(pd.Timestamp("2024-11-25T00:00:00Z").value)
SCAN_TO = int(pd.Timestamp("2024-12-04T00:00:00Z").value)
FRAMES = {
    "1h-session": ("1h", TimeFrame(calendar="XNYS", align="session")),
    "30m-epoch": ("30m", TimeFrame(calendar="XNYS")),
    "1d": ("1d", TimeFrame(calendar="XNYS")),
}


@cache
def windows_of(case: str) -> tuple[Windows, list[int]]:
    label, frame = FRAMES[case]
    windows = make_windows([parse_resolution(label)], frame)[label]
    return windows, all_windows(windows)


def all_windows(windows: Windows) -> list[int]:
    """Every window that holds an in-session minute, by scanning every minute."""
    minutes = pl.Series(np.arange(SCAN_FROM, SCAN_TO, MINUTE_NS), dtype=pl.Int64)
    inside = windows.inside(minutes)
    assert inside is not None
    starts = windows.bounds(minutes.filter(inside)).start
    return sorted(set(starts.to_list()))


def bars(label: str, starts: list[int], closes: list[float]) -> pl.DataFrame:
    n = len(starts)
    return pl.DataFrame(
        {
            "symbol": ["S"] * n,
            "resolution": [label] * n,
            "ts_ns": starts,
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": [1.0] * n,
            "vwap": closes,
            "trades": [1] * n,
            "end_ts_ns": [None] * n,
            "incomplete": [False] * n,
        },
        schema=BAR_SCHEMA,
    )


@settings(max_examples=40, deadline=None)
@given(case=st.sampled_from(sorted(FRAMES)), data=st.data())
def test_gaps_are_the_in_session_windows_without_bars(case: str, data: st.DataObject) -> None:
    windows, every = windows_of(case)
    chosen = sorted(data.draw(st.sets(st.sampled_from(every), min_size=1, max_size=len(every))))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(chosen)), max_size=4)))
    tracker = GapTracker({windows.label: windows}, fill=True)
    closes = [float(i + 1) for i in range(len(chosen))]
    flats = []
    for a, b in zip([0, *cuts], [*cuts, len(chosen)], strict=True):
        flats.append(tracker.observe(bars(windows.label, chosen[a:b], closes[a:b])))
    flat = pl.concat(flats)
    want = [w for w in every if chosen[0] < w < chosen[-1] and w not in set(chosen)]
    assert flat["ts_ns"].to_list() == want
    assert tracker.counts[windows.label].gaps == len(want) == tracker.counts[windows.label].filled
    # Each flat bar carries the close of the bar before it.
    previous = {w: c for w, c in zip(chosen, closes, strict=True)}
    for start, close in flat.select("ts_ns", "close").rows():
        assert close == previous[max(w for w in chosen if w < start)]
    assert (flat["volume"] == 0).all() and (flat["trades"] == 0).all()
    assert flat["vwap"].null_count() == flat.height
