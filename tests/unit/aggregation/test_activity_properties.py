"""Activity bars equal the one-tick-at-a-time reference, whatever the cuts and checkpoints."""

from __future__ import annotations

from itertools import pairwise

import polars as pl
from activity_reference import RefTick, reference_bars
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from market_data_pipeline.aggregation.builder import BarEngine
from market_data_pipeline.aggregation.engines import BarEngines
from market_data_pipeline.aggregation.resolution import parse_resolution, parse_resolutions
from market_data_pipeline.checkpoint import Checkpoint
from market_data_pipeline.frames import BAR_SCHEMA

TICK = {"symbol": pl.String(), "ts_ns": pl.Int64(), "price": pl.Float64(), "size": pl.Float64()}
T0 = 1_700_000_000_000_000_000

tick_rows = st.lists(
    st.tuples(
        st.sampled_from("ABC"),
        # Microsecond collisions, ties and out-of-order arrival are all likely.
        st.integers(0, 40).map(lambda i: T0 + i * 700),
        st.integers(1, 60).map(lambda q: q * 0.25),  # a binary price grid sums exactly
        st.integers(0, 9).map(float),
    ),
    max_size=80,
)
activity_labels = st.sampled_from(
    ["1tick", "3tick", "7tick", "5volume", "12volume", "2.5volume", "40value", "100.5value"]
)


def frame(rows: list[tuple[str, int, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=TICK, orient="row")


def checkpointed(engine: BarEngines, labels: str, grace_ns: int) -> BarEngines:
    """Store the engine's state as a checkpoint row and restore a new engine from it."""
    row = Checkpoint("t", 1, engine.open_state(), engine.watermarks(), "{}").to_row()
    saved = Checkpoint.from_row(row)
    return BarEngines.restore(
        parse_resolutions(labels), grace_ns, saved.open_state, saved.watermarks
    )


def run_cut(
    rows: list[tuple[str, int, float, float]],
    labels: str,
    grace_ns: int,
    cuts: list[int],
    restarts: list[bool],
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Feed ``rows`` cut at ``cuts``, restoring from a checkpoint where ``restarts`` says."""
    engine = BarEngines(parse_resolutions(labels), grace_ns)
    ticks = frame(rows)
    out, late = [], dict.fromkeys(labels.split(","), 0)
    bounds = [0, *sorted(cuts), len(rows)]
    for (low, high), restart in zip(pairwise(bounds), restarts, strict=False):
        out.append(engine.add_ticks(ticks.slice(low, high - low)))
        if restart:
            for label, stats in engine.stats().items():
                late[label] += stats.ticks_late
            engine = checkpointed(engine, labels, grace_ns)
    out.append(engine.flush())
    for label, stats in engine.stats().items():
        late[label] += stats.ticks_late
        assert stats.ticks_in == stats.ticks_in_bars + stats.ticks_late + stats.open_ticks
    return pl.concat(out).sort("resolution", "symbol", "ts_ns"), late


def expected(
    rows: list[tuple[str, int, float, float]], label: str, grace_ns: int
) -> tuple[pl.DataFrame, int]:
    res = parse_resolution(label)
    ticks = [RefTick(*row) for row in rows]
    bars, late = reference_bars(ticks, res.unit, res.threshold, grace_ns, res.label)
    return pl.DataFrame(bars, schema=BAR_SCHEMA), late


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=tick_rows,
    labels=st.lists(activity_labels, min_size=1, max_size=3, unique=True),
    grace_ns=st.sampled_from([0, 700, 5_000]),
    data=st.data(),
)
def test_activity_bars_match_the_reference_across_cuts_and_checkpoints(
    rows: list[tuple[str, int, float, float]],
    labels: list[str],
    grace_ns: int,
    data: st.DataObject,
) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(rows)), max_size=5))
    restarts = data.draw(st.lists(st.booleans(), min_size=len(cuts) + 1, max_size=len(cuts) + 1))
    got, late = run_cut(rows, ",".join(labels), grace_ns, cuts, restarts)
    for label in labels:
        want, want_late = expected(rows, label, grace_ns)
        mine = got.filter(pl.col("resolution") == label)
        assert_frame_equal(mine, want.sort("symbol", "ts_ns"), check_exact=False, rel_tol=1e-12)
        assert late[label] == want_late
        # Keys are unique: no bar overwrites another in a store.
        assert not mine.select("symbol", "ts_ns").is_duplicated().any()


@settings(max_examples=100, deadline=None)
@given(rows=tick_rows, cuts=st.lists(st.integers(0, 80), max_size=4), restart=st.booleans())
def test_time_bars_beside_activity_bars_are_those_of_the_time_engine_alone(
    rows: list[tuple[str, int, float, float]], cuts: list[int], restart: bool
) -> None:
    cuts = [min(cut, len(rows)) for cut in cuts]
    got, _ = run_cut(rows, "1s,5tick,10volume", 1_000, cuts, [restart] * (len(cuts) + 1))
    alone = BarEngine(parse_resolutions("1s"), 1_000)
    want = pl.concat([alone.add_ticks(frame(rows)), alone.flush()])
    assert_frame_equal(
        got.filter(pl.col("resolution") == "1s"), want.sort("resolution", "symbol", "ts_ns")
    )


QUOTE = {"symbol": pl.String(), "ts_ns": pl.Int64(), "bid": pl.Float64(), "ask": pl.Float64()}


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from("AB"),
            st.integers(0, 30).map(lambda i: T0 + i * 400_000_000),
            st.integers(1, 40).map(lambda q: q * 0.25),
            st.integers(0, 4).map(lambda q: q * 0.25),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_bid_ask_and_mid_bars_are_bars_of_that_price(
    rows: list[tuple[str, int, float, float]],
) -> None:
    quotes = pl.DataFrame(
        [(s, ts, bid, bid + spread) for s, ts, bid, spread in rows], schema=QUOTE, orient="row"
    ).with_columns(((pl.col("bid") + pl.col("ask")) / 2).alias("price"), pl.lit(0.0).alias("size"))
    engine = BarEngines(parse_resolutions("1s,1s:bid,1s:ask,3tick:bid,3tick"), 0)
    got = pl.concat([engine.add_ticks(quotes), engine.flush()])
    for side, label in (("price", "1s"), ("bid", "1s:bid"), ("ask", "1s:ask")):
        alone = BarEngine(parse_resolutions("1s"), 0)
        priced = quotes.with_columns(pl.col(side).alias("price"))
        want = pl.concat([alone.add_ticks(priced), alone.flush()])
        want = want.with_columns(pl.lit(label).alias("resolution"))
        mine = got.filter(pl.col("resolution") == label).sort("symbol", "ts_ns")
        assert_frame_equal(mine, want.sort("symbol", "ts_ns"))
    for side, label in (("bid", "3tick:bid"), ("price", "3tick")):
        ticks = [
            RefTick(r["symbol"], r["ts_ns"], r[side], 0.0) for r in quotes.iter_rows(named=True)
        ]
        bars, _ = reference_bars(ticks, "tick", 3, 0, label)
        mine = got.filter(pl.col("resolution") == label).sort("symbol", "ts_ns")
        assert_frame_equal(mine, pl.DataFrame(bars, schema=BAR_SCHEMA).sort("symbol", "ts_ns"))
