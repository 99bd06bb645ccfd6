"""Several files as one stream in event time; rows two files (or chunks) repeat."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from source_helpers import collect, write_text

from market_data_pipeline.aggregation.builder import BarEngine
from market_data_pipeline.aggregation.resolution import Resolution
from market_data_pipeline.errors import BadInputError
from market_data_pipeline.sources.replay.merge import merge_by_time
from market_data_pipeline.sources.replay.source import ReplaySource, expand_inputs

RESOLUTIONS = [Resolution("r7", 7), Resolution("r40", 40)]


def _bars(frames: list[pl.DataFrame]) -> pl.DataFrame:
    engine = BarEngine(RESOLUTIONS, 0)
    out = [engine.add_ticks(frame) for frame in frames]
    out.append(engine.flush())
    assert all(s.ticks_late == 0 for s in engine.stats().values())
    return pl.concat(out).sort("resolution", "symbol", "ts_ns")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    times=st.lists(st.integers(0, 400), min_size=1, max_size=80, unique=True),
    files=st.integers(1, 5),
    chunk_rows=st.integers(1, 9),
    seed=st.integers(0, 2**16),
    repeat_flags=st.booleans(),
)
def test_files_split_at_random_give_the_bars_of_one_file(
    tmp_path_factory: pytest.TempPathFactory,
    times: list[int],
    files: int,
    chunk_rows: int,
    seed: int,
    repeat_flags: bool,
) -> None:
    rng = random.Random(seed)
    times.sort()
    rows = [
        (rng.choice("AB"), ts, float(rng.randint(1, 50)), float(rng.randint(0, 3))) for ts in times
    ]
    whole = pl.DataFrame(rows, schema=["symbol", "ts_ns", "price", "size"], orient="row")
    # Each row goes to a random file: the files overlap in time, each stays time-sorted.
    owner = [rng.randrange(files) for _ in rows]
    names = [
        f"part-{name}.csv" for name in rng.sample(range(100), files)
    ]  # names unrelated to time
    folder = tmp_path_factory.mktemp("split")
    paths = []
    for number, name in enumerate(names):
        mine = whole.filter(pl.Series([o == number for o in owner]))
        mine.rename({"ts_ns": "ts"}).write_csv(folder / name)
        paths.append(str(folder / name))
    rng.shuffle(paths)
    given = expand_inputs(paths if repeat_flags else [str(folder / "*.csv")])
    source = ReplaySource(given, ts_unit="ns", chunk_rows=chunk_rows)
    frames = asyncio.run(_frames(source))
    assert _bars(frames).equals(_bars([whole]))
    assert sum(f.rows for f in source.files) == len(rows)


async def _frames(source: ReplaySource) -> list[pl.DataFrame]:
    return [frame async for frame in source.batches()]


def test_merge_keeps_rows_of_one_time_together_and_in_input_order() -> None:
    a = iter(
        [pl.DataFrame({"ts_ns": [1, 5], "f": [0, 0]}), pl.DataFrame({"ts_ns": [5, 9], "f": [0, 0]})]
    )
    b = iter([pl.DataFrame({"ts_ns": [5], "f": [1]}), pl.DataFrame({"ts_ns": [6], "f": [1]})])
    out = list(merge_by_time([a, b]))
    assert pl.concat(out).rows() == [(1, 0), (5, 0), (5, 0), (5, 1), (6, 1), (9, 0)]
    assert any(frame.filter(pl.col("ts_ns") == 5).height == 3 for frame in out)


BARS = "symbol,ts,open,high,low,close,volume\n"


def test_a_bar_in_two_files_is_a_bad_row_naming_both(tmp_path: Path) -> None:
    a = write_text(tmp_path / "a.csv", BARS + "SPY,60,1,2,1,2,5\nSPY,120,1,2,1,2,5")
    b = write_text(tmp_path / "b.csv", BARS + "SPY,120,1,2,1,2,5\nSPY,180,1,2,1,2,5")
    with pytest.raises(BadInputError) as caught:
        asyncio.run(collect(ReplaySource([a, b], ts_unit="s")))
    message = str(caught.value)
    assert message.startswith(f"{b}, row 2: duplicate bar (SPY at 1970-01-01T00:02:00Z)")
    assert f"also in {a} row 3" in message


def test_a_bar_repeated_in_a_later_chunk_of_one_file_is_found(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "a.csv", BARS + "SPY,60,1,2,1,2,5\nSPY,120,1,2,1,2,5\nSPY,120,1,2,1,2,5"
    )
    with pytest.raises(BadInputError, match=r"row 4: duplicate bar .* also in .*a.csv row 3"):
        asyncio.run(collect(ReplaySource([path], ts_unit="s", chunk_rows=2)))
    skip = ReplaySource([path], ts_unit="s", chunk_rows=2, on_bad_row="skip")
    assert asyncio.run(collect(skip)).height == 2
    assert skip.bad_reasons == {"duplicate bar": 1}
    assert (skip.files[0].rows, skip.files[0].bad) == (3, 1)


TRADES = "symbol,ts,price,size\n"


def test_a_trade_in_two_files_fails_or_is_skipped_and_counted(tmp_path: Path) -> None:
    a = write_text(tmp_path / "a.csv", TRADES + "X,1,10,1\nX,2,11,1\nX,2,11,1")
    b = write_text(tmp_path / "b.csv", TRADES + "X,2,11,1\nX,3,12,1")
    with pytest.raises(
        BadInputError, match=r"b.csv, row 2: duplicate trade .* also in .*a.csv row 3"
    ):
        asyncio.run(collect(ReplaySource([a, b], ts_unit="s")))
    source = ReplaySource([a, b], ts_unit="s", on_duplicate="skip")
    out = asyncio.run(collect(source))
    # Two equal trades inside one file are two fills; only the other file's copy is a repeat.
    assert out["ts_ns"].to_list() == [10**9, 2 * 10**9, 2 * 10**9, 3 * 10**9]
    assert source.bad_reasons == {"duplicate row": 1}
    assert [(f.rows, f.duplicate) for f in source.files] == [(3, 0), (2, 1)]


def test_inputs_accumulate_directories_and_read_a_file_once(tmp_path: Path) -> None:
    folder = tmp_path / "day"
    folder.mkdir()
    one = write_text(folder / "b.csv", TRADES + "X,1,10,1")
    two = write_text(folder / "a.parquet.csv", TRADES + "X,2,10,1")
    (folder / "notes.md").write_text("not data")
    (folder / ".hidden.csv").write_text(TRADES)
    extra = write_text(tmp_path / "z.csv", TRADES + "X,3,10,1")
    found = expand_inputs([str(folder), str(extra), str(one)])
    assert found == [two.resolve(), one.resolve(), extra.resolve()]
    with pytest.raises(BadInputError, match="no CSV or Parquet file in this directory"):
        (tmp_path / "empty").mkdir()
        expand_inputs([str(tmp_path / "empty")])
