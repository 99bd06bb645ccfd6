"""Property tests: the bar engine against the brute-force reference in ``bar_reference``."""

from __future__ import annotations

from itertools import pairwise

import polars as pl
from bar_helpers import (
    TickRow,
    assert_same_bars,
    keyed,
    resolution_sets,
    split,
    symbol_queues,
    tick_rows,
    ticks,
)
from bar_reference import BarKey, ReferenceEngine, Window, as_bars, input_bar, tick
from hypothesis import given, settings
from hypothesis import strategies as st

from market_data_pipeline.aggregation.builder import BarEngine
from market_data_pipeline.aggregation.resolution import Resolution
from market_data_pipeline.frames import BAR_INPUT_SCHEMA


@settings(max_examples=300, deadline=None)
@given(
    rows=tick_rows,
    resolutions=resolution_sets,
    grace_ns=st.integers(0, 60),
    cuts=st.lists(st.integers(0, 60), max_size=6),
    max_held_rows=st.sampled_from([1, 7, 1_000]),
    ask_stats=st.booleans(),
)
def test_engine_matches_reference(
    rows: list[TickRow],
    resolutions: list[Resolution],
    grace_ns: int,
    cuts: list[int],
    max_held_rows: int,
    ask_stats: bool,
) -> None:
    engine = _batch_by_batch(rows, resolutions, grace_ns, cuts, max_held_rows, ask_stats)
    assert all(s.open_windows == 0 and s.open_ticks == 0 for s in engine.stats().values())


def _batch_by_batch(
    rows: list[TickRow],
    resolutions: list[Resolution],
    grace_ns: int,
    cuts: list[int],
    max_held_rows: int,
    ask_stats: bool,
) -> BarEngine:
    """Feed ``rows`` split at ``cuts``; every batch's bars and the final flush must equal the
    reference's. Return the flushed engine."""
    # max_hold_s=0: every frame that can close a window is folded in at once, so the bars of
    # each batch can be compared with the reference's (test_held_frames_... covers holding).
    engine = BarEngine(resolutions, grace_ns, max_held_rows=max_held_rows, max_hold_s=0.0)
    reference = ReferenceEngine([(r.label, r.ns) for r in resolutions], grace_ns)
    for batch in split(rows, cuts):
        got = keyed(engine.add_ticks(ticks(batch)))
        assert_same_bars(got, as_bars(reference.add([tick(*row) for row in batch])))
        if ask_stats:
            _check_stats(engine, reference)
    assert_same_bars(keyed(engine.flush()), as_bars(reference.flush()))
    _check_stats(engine, reference)
    return engine


@settings(max_examples=200, deadline=None)
@given(
    rows=tick_rows,
    resolutions=resolution_sets,
    grace_ns=st.integers(0, 60),
    cuts=st.lists(st.integers(0, 60), max_size=12),
    ask_stats=st.booleans(),
)
def test_held_frames_give_the_reference_bars_and_counts(
    rows: list[TickRow],
    resolutions: list[Resolution],
    grace_ns: int,
    cuts: list[int],
    ask_stats: bool,
) -> None:
    # A clock that never moves: frames that may close a window are held for as long as the
    # share rule allows, so bars come later than the reference's but must be the same bars.
    engine = BarEngine(resolutions, grace_ns, max_hold_s=1.0, clock=lambda: 0.0)
    reference = ReferenceEngine([(r.label, r.ns) for r in resolutions], grace_ns)
    got: list[pl.DataFrame] = []
    expected: dict[BarKey, Window] = {}
    for batch in split(rows, cuts):
        got.append(engine.add_ticks(ticks(batch)))
        expected.update(reference.add([tick(*row) for row in batch]))
        if ask_stats:
            _check_stats(engine, reference)
    got.append(engine.flush())
    expected.update(reference.flush())
    assert_same_bars(keyed(pl.concat(got)), as_bars(expected))
    _check_stats(engine, reference)


@st.composite
def interleaved_runs(draw: st.DrawFn) -> list[TickRow]:
    """Ticks as a log consumer fetches them: runs of one symbol at a time, each symbol's ticks
    in event-time order (ties included), with a few runs and single ticks set back in time,
    some by more than the grace."""
    queues = symbol_queues(draw, max_step=6, max_ticks=25, first=(-40, 100))
    rows: list[TickRow] = []
    while any(queues.values()):
        symbol = draw(st.sampled_from(sorted(s for s, queue in queues.items() if queue)))
        size = draw(st.integers(1, 12))
        back = draw(st.integers(1, 80)) if draw(st.integers(0, 7)) == 0 else 0
        rows += [
            (name, ts - back, price, amount) for name, ts, price, amount in queues[symbol][:size]
        ]
        del queues[symbol][:size]
    for at, back in draw(st.lists(st.tuples(st.integers(0, 200), st.integers(1, 80)), max_size=3)):
        symbol, ts, price, amount = rows[at % len(rows)]
        rows[at % len(rows)] = (symbol, ts - back, price, amount)
    return rows


@settings(max_examples=300, deadline=None)
@given(
    rows=interleaved_runs(),
    resolutions=resolution_sets,
    grace_ns=st.integers(0, 60),
    cuts=st.lists(st.integers(0, 80), max_size=6),
    max_held_rows=st.sampled_from([1, 7, 1_000]),
    ask_stats=st.booleans(),
)
def test_interleaved_runs_in_order_per_symbol_match_reference(
    rows: list[TickRow],
    resolutions: list[Resolution],
    grace_ns: int,
    cuts: list[int],
    max_held_rows: int,
    ask_stats: bool,
) -> None:
    # Frames out of time order overall but in order per symbol skip the per-row lateness test
    # and the sort; a tick set back in time sends its frame the exact way. Both give these bars.
    _batch_by_batch(rows, resolutions, grace_ns, cuts, max_held_rows, ask_stats)


def _check_stats(engine: BarEngine, reference: ReferenceEngine) -> None:
    stats = engine.stats()
    for label, late in reference.late.items():
        s = stats[label]
        assert s.ticks_in == reference.items_in
        assert s.ticks_late == late
        assert s.ticks_in == s.ticks_in_bars + s.ticks_late + s.open_ticks
        open_windows = [key for key in reference.open if key[0] == label]
        assert s.open_windows == len(open_windows)


@settings(max_examples=150, deadline=None)
@given(rows=tick_rows, cuts=st.lists(st.integers(0, 60), max_size=6), fine=st.integers(1, 12))
def test_resampled_bars_equal_bars_from_ticks(
    rows: list[TickRow], cuts: list[int], fine: int
) -> None:
    coarse = Resolution("coarse", fine * 5)
    never_late = 10_000  # larger than any spread of the generated times
    fine_engine = BarEngine([Resolution("fine", fine)], never_late)
    direct = BarEngine([coarse], never_late)
    fine_bars = [fine_engine.add_ticks(ticks(b)) for b in split(rows, cuts)]
    fine_bars.append(fine_engine.flush())
    for b in split(rows, cuts):
        direct.add_ticks(ticks(b))
    want = keyed(direct.flush())

    # Bars arrive in time order per symbol (a flush lists them so), so none is late at grace 0.
    resampler = BarEngine([coarse], 0)
    bar_input = pl.concat(fine_bars).sort("symbol", "ts_ns").drop("resolution")
    got = keyed(pl.concat([resampler.add_bars(bar_input), resampler.flush()]))
    assert_same_bars(got, want)
    stats = resampler.stats()["coarse"]
    assert (stats.ticks_in, stats.ticks_late, stats.ticks_in_bars) == (
        bar_input.height,
        0,
        bar_input.height,
    )


@settings(max_examples=150, deadline=None)
@given(
    bars=st.lists(
        st.fixed_dictionaries(
            {
                "symbol": st.sampled_from(["A", "B"]),
                "ts_ns": st.integers(0, 100),
                "open": st.integers(1, 100).map(float),
                "high": st.integers(100, 120).map(float),
                "low": st.integers(0, 1).map(float),
                "close": st.integers(1, 100).map(float),
                "volume": st.integers(0, 3).map(float),
                "vwap": st.none() | st.integers(1, 100).map(float),
                "trades": st.none() | st.integers(0, 5),
            }
        ),
        max_size=40,
    ),
    grace_ns=st.integers(0, 30),
    cuts=st.lists(st.integers(0, 40), max_size=4),
)
def test_bar_input_matches_reference(
    bars: list[dict[str, object]], grace_ns: int, cuts: list[int]
) -> None:
    resolutions = [Resolution("r10", 10), Resolution("r25", 25)]
    engine = BarEngine(resolutions, grace_ns, max_hold_s=0.0)
    reference = ReferenceEngine([(r.label, r.ns) for r in resolutions], grace_ns)
    bounds = sorted({0, len(bars), *(c % (len(bars) + 1) for c in cuts)})
    for a, b in pairwise(bounds):
        frame = pl.DataFrame(bars[a:b], schema=BAR_INPUT_SCHEMA)
        got = keyed(engine.add_bars(frame))
        assert_same_bars(got, as_bars(reference.add([input_bar(row) for row in bars[a:b]])))
    assert_same_bars(keyed(engine.flush()), as_bars(reference.flush()))
    for label, s in engine.stats().items():
        assert s.ticks_late == reference.late[label]
        assert s.ticks_in == len(bars) == s.ticks_in_bars + s.ticks_late
