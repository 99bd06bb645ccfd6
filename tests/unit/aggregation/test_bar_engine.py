"""Focused examples of the bar engine rules."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from bar_helpers import keyed, ticks

from market_data_pipeline.aggregation.builder import DRAIN_SHARE, BarEngine, ResolutionStats
from market_data_pipeline.aggregation.resolution import (
    Resolution,
    parse_resolution,
    parse_resolutions,
)
from market_data_pipeline.errors import BadInputError, UsageError
from market_data_pipeline.frames import BAR_INPUT_SCHEMA, BAR_SCHEMA, datetime_to_ns

S = 1_000_000_000
M = 60 * S
T0 = datetime_to_ns(datetime(2024, 3, 10, 14, 30, tzinfo=UTC))  # on a minute boundary


def run(engine: BarEngine, *batches: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([*(engine.add_ticks(b) for b in batches), engine.flush()])


def test_windows_align_to_the_epoch() -> None:
    ts = 1_700_000_123_456_789_012
    bars = run(BarEngine(parse_resolutions("1m,7m"), 0), ticks([("A", ts, 1.0, 1.0)]))
    starts = dict(zip(bars["resolution"], bars["ts_ns"], strict=True))
    assert starts == {"1m": ts - ts % M, "7m": ts - ts % (7 * M)}
    assert starts["1m"] % M == 0


def test_negative_times_use_the_window_below() -> None:
    bars = run(BarEngine([Resolution("10ns", 10)], 0), ticks([("A", -3, 1.0, 1.0)]))
    assert bars["ts_ns"].to_list() == [-10]


def test_daily_windows_are_utc_days() -> None:
    before = datetime_to_ns(datetime(2024, 3, 10, 23, 59, 59, tzinfo=UTC))
    after = datetime_to_ns(datetime(2024, 3, 11, 0, 0, 0, tzinfo=UTC))
    bars = run(
        BarEngine([parse_resolution("1d")], 0),
        ticks([("A", before, 1.0, 1.0), ("A", after, 2.0, 1.0)]),
    )
    assert bars["ts_ns"].to_list() == [
        datetime_to_ns(datetime(2024, 3, 10, tzinfo=UTC)),
        datetime_to_ns(datetime(2024, 3, 11, tzinfo=UTC)),
    ]


def test_bar_fields_and_schema() -> None:
    rows = [("A", T0 + 1, 10.0, 2.0), ("A", T0 + 2, 12.0, 1.0), ("A", T0 + 3, 9.0, 1.0)]
    bars = run(BarEngine([parse_resolution("1m")], 0), ticks(rows))
    assert dict(bars.schema) == BAR_SCHEMA
    assert list(bars.columns) == list(BAR_SCHEMA)
    assert bars.row(0, named=True) == {
        "symbol": "A",
        "resolution": "1m",
        "ts_ns": T0,
        "open": 10.0,
        "high": 12.0,
        "low": 9.0,
        "close": 9.0,
        "volume": 4.0,
        "vwap": (20.0 + 12.0 + 9.0) / 4.0,
        "trades": 3,
        "end_ts_ns": None,
        "incomplete": False,
    }


def test_empty_results_have_the_bar_schema() -> None:
    engine = BarEngine([parse_resolution("1m")], 0)
    assert dict(engine.add_ticks(ticks([("A", T0, 1.0, 1.0)])).schema) == BAR_SCHEMA
    assert dict(engine.add_ticks(ticks([])).schema) == BAR_SCHEMA
    assert dict(BarEngine([parse_resolution("1m")], 0).flush().schema) == BAR_SCHEMA


def test_quote_bars_have_null_vwap() -> None:
    rows = [("EURUSD", T0 + S, 1.1, 0.0), ("EURUSD", T0 + 2 * S, 1.2, 0.0)]
    bar = run(BarEngine([parse_resolution("1m")], 0), ticks(rows)).row(0, named=True)
    assert (bar["volume"], bar["vwap"], bar["trades"]) == (0.0, None, 2)


def test_open_and_close_follow_event_time_not_arrival() -> None:
    rows = [("A", T0 + 5, 2.0, 1.0), ("A", T0 + 1, 1.0, 1.0), ("A", T0 + 9, 4.0, 1.0)]
    rows.append(("A", T0 + 7, 3.0, 1.0))
    bar = run(BarEngine([parse_resolution("1m")], S), ticks(rows)).row(0, named=True)
    assert (bar["open"], bar["close"]) == (1.0, 4.0)


def test_event_time_ties_take_first_open_and_last_close_across_batches() -> None:
    engine = BarEngine([parse_resolution("1m")], 0, max_held_rows=1)
    bars = run(
        engine,
        ticks([("A", T0 + 1, 1.0, 1.0), ("A", T0 + 9, 5.0, 1.0)]),
        ticks([("A", T0 + 1, 2.0, 1.0), ("A", T0 + 9, 6.0, 1.0)]),
    )
    assert (bars["open"].item(), bars["close"].item()) == (1.0, 6.0)


def test_window_closes_once_the_watermark_passes_its_end() -> None:
    engine = BarEngine([parse_resolution("1m")], 5 * S)
    assert engine.add_ticks(ticks([("A", T0 + S, 1.0, 1.0)])).is_empty()
    assert engine.add_ticks(ticks([("A", T0 + M + 4 * S, 2.0, 1.0)])).is_empty()  # within grace
    closed = engine.add_ticks(ticks([("A", T0 + M + 5 * S, 3.0, 1.0)]))
    assert closed["ts_ns"].to_list() == [T0]


def test_late_tick_is_counted_and_leaves_the_bar_alone() -> None:
    engine = BarEngine([parse_resolution("1m")], 0)
    first = engine.add_ticks(ticks([("A", T0 + S, 1.0, 1.0), ("A", T0 + M, 2.0, 1.0)]))
    late = engine.add_ticks(ticks([("A", T0 + 2 * S, 99.0, 5.0)]))
    assert late.is_empty()
    assert first.row(0, named=True)["high"] == 1.0
    assert engine.stats()["1m"] == ResolutionStats(
        ticks_in=3, ticks_late=1, ticks_in_bars=1, bars_emitted=1, open_windows=1, open_ticks=1
    )


def test_watermark_is_per_symbol() -> None:
    # One file per symbol, globbed: B starts long after A's last tick in arrival order.
    engine = BarEngine([parse_resolution("1m")], 0)
    a = ticks([("A", T0 + i * M, 1.0, 1.0) for i in range(10)])
    b = ticks([("B", T0 + i * M, 2.0, 1.0) for i in range(10)])
    bars = run(engine, a, b)
    assert engine.stats()["1m"].ticks_late == 0
    assert bars.filter(pl.col("symbol") == "B").height == 10


def test_flush_emits_every_open_window_and_ends_the_stream() -> None:
    engine = BarEngine(parse_resolutions("1m,1h"), 10 * M)
    engine.add_ticks(ticks([("A", T0 + i * M, 1.0, 1.0) for i in range(3)] + [("B", T0, 2.0, 1.0)]))
    flushed = engine.flush()
    assert flushed.height == 4 + 2
    for stats in engine.stats().values():
        assert (stats.open_windows, stats.open_ticks) == (0, 0)
        assert stats.ticks_in == stats.ticks_in_bars == 4
    assert engine.flush().is_empty()
    with pytest.raises(UsageError):
        engine.add_ticks(ticks([("A", T0, 1.0, 1.0)]))


def test_batch_split_does_not_change_bars() -> None:
    rows = [
        ("A" if i % 3 else "B", T0 + (i * 7919 % 400) * S, float(i % 13), 1.0) for i in range(400)
    ]
    whole = BarEngine(parse_resolutions("1m,5m"), 30 * S)
    one = keyed(run(whole, ticks(rows)))
    pieces = BarEngine(parse_resolutions("1m,5m"), 30 * S)
    many = keyed(run(pieces, *(ticks(rows[i : i + 17]) for i in range(0, 400, 17))))
    assert one == many
    assert whole.stats() == pieces.stats()


def test_extra_quote_columns_are_ignored() -> None:
    frame = ticks([("A", T0, 1.0, 0.0)]).with_columns(bid=pl.lit(0.9), ask=pl.lit(1.1))
    assert run(BarEngine([parse_resolution("1m")], 0), frame).height == 1


def test_bad_frames_are_rejected() -> None:
    engine = BarEngine([parse_resolution("1m")], 0)
    with pytest.raises(BadInputError, match="size"):
        engine.add_ticks(ticks([("A", T0, 1.0, 1.0)]).drop("size"))
    with pytest.raises(BadInputError, match="price"):
        engine.add_ticks(ticks([("A", T0, 1.0, 1.0)]).with_columns(price=pl.lit(None, pl.Float64)))


@pytest.mark.parametrize(
    ("resolutions", "grace_ns"),
    [([], 0), ([Resolution("1m", M), Resolution("1m", M)], 0), ([Resolution("1m", M)], -1)],
)
def test_bad_settings_are_rejected(resolutions: list[Resolution], grace_ns: int) -> None:
    with pytest.raises(UsageError):
        BarEngine(resolutions, grace_ns)


def bar_input(rows: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=BAR_INPUT_SCHEMA)


def test_resampling_combines_bars() -> None:
    rows = [
        {"symbol": "A", "ts_ns": T0 + M, "open": 2.0, "high": 5.0, "low": 1.0, "close": 3.0,
         "volume": 10.0, "vwap": 3.0, "trades": 4},
        {"symbol": "A", "ts_ns": T0, "open": 1.0, "high": 4.0, "low": 0.5, "close": 2.0,
         "volume": 30.0, "vwap": 2.0, "trades": 6},
    ]  # fmt: skip
    engine = BarEngine([parse_resolution("5m")], M)
    bar = pl.concat([engine.add_bars(bar_input(rows)), engine.flush()]).row(0, named=True)
    assert bar == {
        "symbol": "A", "resolution": "5m", "ts_ns": T0, "open": 1.0, "high": 5.0, "low": 0.5,
        "close": 3.0, "volume": 40.0, "vwap": (30.0 + 60.0) / 40.0, "trades": 10,
        "end_ts_ns": None, "incomplete": False,
    }  # fmt: skip


def test_resampling_unknown_vwap_and_trades_stay_unknown() -> None:
    base = {"symbol": "A", "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0}
    rows = [
        {**base, "ts_ns": T0, "volume": 5.0, "vwap": None, "trades": 3},
        {**base, "ts_ns": T0 + M, "volume": 5.0, "vwap": 1.0, "trades": None},
        {**base, "ts_ns": T0 + 5 * M, "volume": 0.0, "vwap": None, "trades": 1},  # quote bar
        {**base, "ts_ns": T0 + 6 * M, "volume": 2.0, "vwap": 1.5, "trades": 2},
    ]
    engine = BarEngine([parse_resolution("5m")], 0)
    bars = pl.concat([engine.add_bars(bar_input(rows)), engine.flush()])
    assert bars.select("vwap", "trades").rows() == [(None, None), (1.5, 3)]


def test_a_small_closing_frame_waits_among_many_open_windows_at_most_max_hold() -> None:
    now = [0.0]
    engine = BarEngine([parse_resolution("1m")], 0, max_hold_s=0.05, clock=lambda: now[0])
    many = ticks([(f"S{i:04d}", T0 + i, 1.0, 1.0) for i in range(1_000)])
    assert engine.add_ticks(many).height == 0
    assert engine.stats()["1m"].open_windows == 1_000  # folded in: 1,000 open windows
    # S0000 moves into the next minute: its first window may close, but folding one tick into
    # 1,000 open windows is not worth it yet, so the frame is held...
    assert engine.add_ticks(ticks([("S0000", T0 + M, 2.0, 1.0)])).height == 0
    now[0] = 0.049
    assert engine.add_ticks(ticks([("S0001", T0 + M, 2.0, 1.0)])).height == 0
    # ...until the oldest held frame has waited max_hold_s.
    now[0] = 0.05
    bars = engine.add_ticks(ticks([("S0002", T0 + M + 1, 2.0, 1.0)]))
    assert sorted(bars["symbol"].to_list()) == ["S0000", "S0001", "S0002"]
    assert engine.stats()["1m"].ticks_in == 1_003


def test_held_rows_are_folded_in_once_they_pay_for_touching_the_open_windows() -> None:
    engine = BarEngine([parse_resolution("1m")], 0, max_hold_s=1.0, clock=lambda: 0.0)
    engine.add_ticks(ticks([(f"S{i:04d}", T0 + i, 1.0, 1.0) for i in range(800)]))
    assert engine.stats()["1m"].open_windows == 800
    enough = 800 // DRAIN_SHARE  # held rows that pay for a pass over 800 open windows
    closing = [(f"S{i:04d}", T0 + M, 2.0, 1.0) for i in range(enough)]
    assert engine.add_ticks(ticks(closing[: enough // 2])).height == 0
    assert engine.add_ticks(ticks(closing[enough // 2 : -1])).height == 0  # one row short
    bars = engine.add_ticks(ticks(closing[-1:]))  # enough rows: folded in
    assert sorted(bars["symbol"].to_list()) == [f"S{i:04d}" for i in range(enough)]


def test_a_snapshot_refuses_to_drop_bars_that_held_frames_closed() -> None:
    engine = BarEngine([parse_resolution("1m")], 0, max_hold_s=1.0, clock=lambda: 0.0)
    engine.add_ticks(ticks([(f"S{i:04d}", T0 + i, 1.0, 1.0) for i in range(100)]))
    engine.stats()
    assert engine.add_ticks(ticks([("S0000", T0 + M, 2.0, 1.0)])).height == 0  # held
    with pytest.raises(UsageError, match="max_hold_s=0"):
        engine.open_state()
    # Nothing is lost: the closed bar comes with the next frame.
    assert engine.add_ticks(ticks([("S0001", T0 + 2, 1.0, 1.0)]))["symbol"].to_list() == ["S0000"]
    assert engine.open_state().height == 100
