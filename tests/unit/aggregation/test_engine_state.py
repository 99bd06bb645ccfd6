"""The engine's open state: snapshot and restore mid-stream, and many symbols at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from bar_helpers import TickRow, assert_same_bars, keyed, resolution_sets, split, tick_rows, ticks
from bar_reference import ReferenceEngine, as_bars, tick
from hypothesis import given, settings
from hypothesis import strategies as st

from market_data_pipeline.aggregation.builder import OPEN_STATE_SCHEMA, WATERMARK_SCHEMA, BarEngine
from market_data_pipeline.aggregation.resolution import Resolution, parse_resolutions
from market_data_pipeline.errors import BadInputError
from market_data_pipeline.sources.base import TickSource
from market_data_pipeline.sources.replay.source import ReplaySource, expand_inputs
from market_data_pipeline.sources.synthetic import SyntheticSource


@settings(max_examples=200, deadline=None)
@given(
    rows=tick_rows,
    resolutions=resolution_sets,
    grace_ns=st.integers(0, 60),
    cuts=st.lists(st.integers(0, 60), max_size=6),
    at=st.integers(0, 6),
    max_held_rows=st.sampled_from([1, 1_000]),
)
def test_restored_engine_goes_on_like_an_uninterrupted_one(
    rows: list[TickRow],
    resolutions: list[Resolution],
    grace_ns: int,
    cuts: list[int],
    at: int,
    max_held_rows: int,
) -> None:
    batches = split(rows, cuts)
    at = min(at, len(batches))
    whole = BarEngine(resolutions, grace_ns, max_held_rows=max_held_rows)
    want = pl.concat([*(whole.add_ticks(ticks(b)) for b in batches), whole.flush()])

    first = BarEngine(resolutions, grace_ns, max_held_rows=max_held_rows)
    before = [first.add_ticks(ticks(b)) for b in batches[:at]]
    state, marks = first.open_state(), first.watermarks()
    assert dict(state.schema) == OPEN_STATE_SCHEMA and dict(marks.schema) == WATERMARK_SCHEMA
    before.append(first.add_ticks(ticks([])))  # anything the snapshot folded in comes out here
    second = BarEngine.restore(resolutions, grace_ns, state, marks, max_held_rows=max_held_rows)
    after = [second.add_ticks(ticks(b)) for b in batches[at:]]
    got = pl.concat([*before, *after, second.flush()])
    assert_same_bars(keyed(got), keyed(want))

    old, new, total = first.stats(), second.stats(), whole.stats()
    for label, s in total.items():
        assert old[label].ticks_late + new[label].ticks_late == s.ticks_late
        restored = int(state.filter(pl.col("resolution") == label)["items"].sum())
        assert new[label].ticks_in == restored + sum(len(b) for b in batches[at:])
        assert new[label].ticks_in == new[label].ticks_in_bars + new[label].ticks_late


def test_restore_refuses_a_state_it_cannot_continue() -> None:
    engine = BarEngine(parse_resolutions("1m"), 0)
    engine.add_ticks(ticks([("A", 1, 1.0, 1.0)]))
    state, marks = engine.open_state(), engine.watermarks()
    with pytest.raises(BadInputError, match="no watermark for symbol 'A'"):
        BarEngine.restore(parse_resolutions("1m"), 0, state, marks.clear())
    with pytest.raises(BadInputError, match=r"resolutions \['1m'\] not built here"):
        BarEngine.restore(parse_resolutions("5m"), 0, state, marks)
    with pytest.raises(BadInputError, match="open state must have the columns"):
        BarEngine.restore(parse_resolutions("1m"), 0, state.drop("items"), marks)


def test_ten_thousand_symbols_match_the_reference() -> None:
    rng = np.random.default_rng(3)
    n, symbols = 30_000, 10_000
    ts = np.sort(rng.integers(0, 40_000, n))
    rows = [
        (f"S{s:05d}", int(t), float(p), float(z))
        for s, t, p, z in zip(
            rng.integers(0, symbols, n),
            ts,
            rng.integers(1, 50, n),
            rng.integers(0, 9, n),
            strict=True,
        )
    ]
    resolutions = [Resolution("r100", 100), Resolution("r1000", 1_000)]
    engine = BarEngine(resolutions, 50)
    reference = ReferenceEngine([(r.label, r.ns) for r in resolutions], 50)
    got, want = [], {}
    for start in range(0, n, 4_096):
        batch = rows[start : start + 4_096]
        got.append(engine.add_ticks(ticks(batch)))
        want.update(as_bars(reference.add([tick(*row) for row in batch])))
    got.append(engine.flush())
    want.update(as_bars(reference.flush()))
    assert_same_bars(keyed(pl.concat(got)), want)


def test_ten_thousand_symbols_synthetic_and_replayed_match_the_reference(tmp_path: Path) -> None:
    names = [f"S{i:05d}" for i in range(10_000)]
    synthetic = SyntheticSource(symbols=names, ticks=20_000, start_ns=0, rate=2_000.0)
    batches = asyncio.run(_frames(synthetic))
    stream = pl.concat(batches)
    resolutions = [Resolution("1s", 10**9), Resolution("5s", 5 * 10**9)]
    reference = ReferenceEngine([(r.label, r.ns) for r in resolutions], 0)
    want = as_bars(reference.add([tick(*row) for row in stream.rows()]))
    want.update(as_bars(reference.flush()))

    direct = BarEngine(resolutions, 0)
    out = [direct.add_ticks(frame) for frame in batches]
    assert_same_bars(keyed(pl.concat([*out, direct.flush()])), want)

    # The same ticks as two overlapping files, each sorted, named against time.
    third = pl.Series([i % 3 == 0 for i in range(stream.height)])
    for name, part in (("b.csv", stream.filter(third)), ("a.csv", stream.filter(~third))):
        part.rename({"ts_ns": "ts"}).write_csv(tmp_path / name)
    source = ReplaySource(expand_inputs(str(tmp_path / "*.csv")), ts_unit="ns", chunk_rows=4_096)
    replayed = BarEngine(resolutions, 0)
    out = [replayed.add_ticks(frame) for frame in asyncio.run(_frames(source))]
    assert_same_bars(keyed(pl.concat([*out, replayed.flush()])), want)
    assert all(s.ticks_late == 0 for s in replayed.stats().values())


async def _frames(source: TickSource) -> list[pl.DataFrame]:
    return [frame async for frame in source.batches()]
