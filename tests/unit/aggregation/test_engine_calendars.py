"""The bar engine with calendar windows: against pandas resample, and against exchange-calendars."""

from __future__ import annotations

import dataclasses

import exchange_calendars as xc
import pandas as pd
import polars as pl
from bar_helpers import ticks
from hypothesis import given, settings
from hypothesis import strategies as st

from market_data_pipeline.aggregation.builder import BarEngine
from market_data_pipeline.aggregation.calendars import TimeFrame, make_windows
from market_data_pipeline.aggregation.resolution import parse_resolutions

LOW_NS = int(pd.Timestamp("2024-02-20T00:00:00Z").value)
HIGH_NS = int(pd.Timestamp("2024-12-10T00:00:00Z").value)
ZONES = ["America/New_York", "Europe/London", "Australia/Sydney", "UTC"]
RULES = {"1d": "D", "1w": "W-MON", "1mo": "MS"}


def engine_for(labels: str, frame: TimeFrame, grace_ns: int = 0) -> BarEngine:
    resolutions = parse_resolutions(labels)
    windows = make_windows(resolutions, frame)
    relabelled = [dataclasses.replace(r, label=windows[r.label].label) for r in resolutions]
    by_label = {w.label: w for w in windows.values()}
    return BarEngine(relabelled, grace_ns, windows=by_label)


def run(engine: BarEngine, frame: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([engine.add_ticks(frame), engine.flush()])


def pandas_bars(
    rows: list[tuple[str, int, float, float]], tz: str, rule: str
) -> set[tuple[int, float, float, float, float, float]]:
    """(ts_ns, open, high, low, close, volume) of each bar pandas resamples ``rows`` into."""
    index = pd.to_datetime([r[1] for r in rows], unit="ns", utc=True).tz_convert(tz)
    frame = pd.DataFrame({"price": [r[2] for r in rows], "size": [r[3] for r in rows]}, index=index)
    frame = frame.sort_index(kind="stable")
    resampled = frame.resample(rule, closed="left", label="left")
    ohlc = resampled["price"].ohlc().join(resampled["size"].sum()).dropna()
    return {
        (int(pd.Timestamp(ts).tz_convert("UTC").value), o, h, lo, c, v)
        for ts, o, h, lo, c, v in ohlc.itertuples()
    }


@settings(max_examples=60, deadline=None)
@given(
    times=st.lists(st.integers(LOW_NS, HIGH_NS), min_size=1, max_size=60, unique=True),
    tz=st.sampled_from(ZONES),
    data=st.data(),
)
def test_zone_days_weeks_months_equal_pandas_resample(
    times: list[int], tz: str, data: st.DataObject
) -> None:
    prices = data.draw(st.lists(st.integers(1, 400), min_size=len(times), max_size=len(times)))
    rows = [("A", t, p / 4, float(p % 5)) for t, p in zip(sorted(times), prices, strict=True)]
    bars = run(engine_for("1d,1w,1mo", TimeFrame(tz=tz)), ticks(rows))
    for label, rule in RULES.items():
        got = bars.filter(pl.col("resolution") == label)
        mine = {
            tuple(r) for r in got.select("ts_ns", "open", "high", "low", "close", "volume").rows()
        }
        assert mine == pandas_bars(rows, tz, rule), label


def xnys_schedule() -> pd.DataFrame:
    cal = xc.get_calendar("XNYS", start="2024-01-01", end="2024-12-31")
    return cal.schedule.loc["2024-03-07":"2024-12-03"]


def test_xnys_session_bars_match_exchange_calendars() -> None:
    schedule = xnys_schedule()
    opens = [int(ts.value) for ts in schedule["open"]]
    closes = [int(ts.value) for ts in schedule["close"]]
    # Every 20 minutes across the range, weekends, holidays and nights included.
    step = 20 * 60 * 10**9
    times = range(opens[0] - 3 * 3_600 * 10**9, closes[-1] + 3 * 3_600 * 10**9, step)
    rows = [("SPY", t, 100.0 + (t // step) % 17, 1.0) for t in times]
    engine = engine_for("1d,1h", TimeFrame(calendar="XNYS", align="session"))
    bars = run(engine, ticks(rows))
    sessions = bars.filter(pl.col("resolution") == "1d@XNYS").sort("ts_ns")
    assert sessions["ts_ns"].to_list() == opens
    inside = [t for t in times if any(o <= t < c for o, c in zip(opens, closes, strict=True))]
    want_counts = [sum(o <= t < c for t in inside) for o, c in zip(opens, closes, strict=True)]
    assert sessions["trades"].to_list() == want_counts
    stats = engine.stats()
    outside = len(rows) - len(inside)
    for label in ("1d@XNYS", "1h@XNYS"):
        s = stats[label]
        assert s.ticks_outside == outside > 0
        assert s.ticks_in == len(rows) == s.ticks_in_bars + s.ticks_late + outside + s.open_ticks
    # The early close of 2024-11-29 cuts the last hour at 13:00 New York time.
    hours = bars.filter(pl.col("resolution") == "1h@XNYS")
    day = int(pd.Timestamp("2024-11-29T12:30:00-05:00").value)
    assert day in hours["ts_ns"].to_list()
    assert int(pd.Timestamp("2024-11-29T13:00:00-05:00").value) not in hours["ts_ns"].to_list()


def test_cmes_sunday_evening_ticks_belong_to_mondays_session() -> None:
    sunday = int(pd.Timestamp("2024-03-10T17:00:00-05:00").value)  # 17:00 CDT, after DST
    rows = [("ES", sunday, 5100.0, 1.0), ("ES", sunday + 16 * 3_600 * 10**9, 5110.0, 2.0)]
    engine = engine_for("1d", TimeFrame(calendar="CMES"))
    bars = run(engine, ticks(rows))
    assert bars.select("resolution", "ts_ns", "open", "close", "volume").rows() == [
        ("1d@CMES", sunday, 5100.0, 5110.0, 3.0)
    ]
