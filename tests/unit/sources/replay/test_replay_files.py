"""ReplaySource files: chunked streaming, Parquet, globs, several files, unusable files, pacing."""

from __future__ import annotations

import gzip
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from source_helpers import collect, write_text

from market_data_pipeline.errors import BadInputError, UsageError
from market_data_pipeline.sources.replay import pacing
from market_data_pipeline.sources.replay.source import ReplaySource, expand_inputs

T0 = 1_704_164_645_000_000_000
ROWS = 700


def sample(rows: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "symbol": rng.choice(["AAPL", "MSFT", "NA"], rows),
            "ts": T0 + np.arange(rows, dtype=np.int64) * 1_000_000,
            "price": np.round(100 + rng.random(rows), 2),
            "size": rng.integers(0, 500, rows).astype(np.float64),
        }
    )


def expected(df: pl.DataFrame) -> pl.DataFrame:
    return df.rename({"ts": "ts_ns"})


@settings(max_examples=8, deadline=None)
@given(chunk_rows=st.integers(5, 400), bad_every=st.integers(2, 50))
async def test_chunked_csv_equals_one_chunk(
    tmp_path_factory: pytest.TempPathFactory, chunk_rows: int, bad_every: int
) -> None:
    path = tmp_path_factory.mktemp("c") / "t.csv"
    df = sample(ROWS).with_columns(ts=pl.col("ts").cast(pl.String))
    # Some ISO and some broken timestamps, so chunks take both the fast and the careful path.
    iso = pl.from_epoch(pl.col("ts").cast(pl.Int64), "ns").dt.strftime("%Y-%m-%dT%H:%M:%S%.fZ")
    index = pl.int_range(pl.len())
    df = df.with_columns(
        ts=pl.when(index % bad_every == 0).then(pl.lit("bad"))
        .when(index % 7 == 0).then(iso).otherwise(pl.col("ts"))
    )  # fmt: skip
    df.write_csv(path)
    whole = ReplaySource([path], on_bad_row="skip")
    chunked = ReplaySource([path], on_bad_row="skip", chunk_rows=chunk_rows)
    a, b = await collect(whole), await collect(chunked)
    assert a.equals(b)
    assert (
        chunked.bad_reasons
        == whole.bad_reasons
        == {"bad timestamp": len(range(0, ROWS, bad_every))}
    )
    assert a.height == ROWS - whole.bad_rows


async def test_large_csv_streams_in_chunks(tmp_path: Path) -> None:
    df = sample(50_000)
    path = tmp_path / "big.csv"
    df.write_csv(path)
    source = ReplaySource([path], chunk_rows=4096)
    heights = [f.height async for f in source.batches()]
    assert max(heights) <= 4096 and len(heights) >= 13
    assert (await collect(source)).equals(expected(df))


async def test_parquet_chunks_equal_csv(tmp_path: Path) -> None:
    df = sample(5000)
    df.write_csv(tmp_path / "t.csv")
    df.write_parquet(tmp_path / "t.parquet", row_group_size=1000)
    from_csv = await collect(ReplaySource([tmp_path / "t.csv"]))
    from_parquet = await collect(ReplaySource([tmp_path / "t.parquet"], chunk_rows=333))
    assert from_csv.equals(from_parquet)
    assert from_csv.equals(expected(df))


async def test_gzip_csv(tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    with gzip.open(path, "wt") as fh:
        fh.write("symbol,ts,price\nA,1,2\n")
    assert (await collect(ReplaySource([path])))["price"].to_list() == [2.0]


async def test_glob_reads_files_in_sorted_order(tmp_path: Path) -> None:
    for day in (3, 1, 2):
        write_text(tmp_path / f"day{day}.csv", f"symbol,ts,price\nA,{day},1")
    (tmp_path / "notes.txt").write_text("x")
    paths = expand_inputs(str(tmp_path / "day*.csv"))
    assert [p.name for p in paths] == ["day1.csv", "day2.csv", "day3.csv"]
    out = await collect(ReplaySource(paths))
    assert out["ts_ns"].to_list() == [1 * 10**9, 2 * 10**9, 3 * 10**9]


def test_expand_inputs_plain_path_and_nothing(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv", "symbol,ts,price\nA,1,2")
    assert expand_inputs(str(path)) == [path]
    for pattern in (str(tmp_path / "*.parquet"), str(tmp_path / "missing.csv")):
        with pytest.raises(BadInputError, match="no file matches"):
            expand_inputs(pattern)


async def test_later_file_must_fit_the_kind(tmp_path: Path) -> None:
    first = write_text(tmp_path / "a.csv", "symbol,ts,price\nA,1,2")
    second = write_text(tmp_path / "b.csv", "symbol,ts,bid\nA,1,2")
    with pytest.raises(BadInputError) as info:
        await collect(ReplaySource([first, second]))
    assert info.value.path == str(second)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="file not found") as info:
        ReplaySource([tmp_path / "nope.csv"])
    assert info.value.path == str(tmp_path / "nope.csv")


def test_not_csv_or_parquet(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text("{}")
    with pytest.raises(BadInputError, match="not a CSV or Parquet") as info:
        ReplaySource([path])
    assert info.value.path == str(path)


def test_corrupt_parquet_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(BadInputError, match="cannot read Parquet") as info:
        ReplaySource([path])
    assert info.value.path == str(path)


def test_empty_csv_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(BadInputError) as info:
        ReplaySource([path])
    assert info.value.path == str(path)


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not a file"):
        ReplaySource([tmp_path])


@pytest.mark.parametrize(
    "kw",
    [{"speed": 0.0}, {"chunk_rows": 0}, {"on_bad_row": "ignore"}, {"ts_unit": "minutes"}],
)
def test_bad_options(tmp_path: Path, kw: dict[str, Any]) -> None:
    path = write_text(tmp_path / "a.csv", "symbol,ts,price\nA,1,2")
    with pytest.raises(UsageError):
        ReplaySource([path], **kw)


async def test_close_stops_reading(tmp_path: Path) -> None:
    sample(10_000).write_csv(tmp_path / "t.csv")
    source = ReplaySource([tmp_path / "t.csv"], chunk_rows=1000)
    gen = source.batches()
    assert isinstance(gen, AsyncGenerator)  # closed early below
    first = await anext(gen)
    await source.close()
    await gen.aclose()
    await source.close()
    assert first.height == 1000


class FakeClock:
    """Stands in for the wall clock of the pacing module: sleeping advances it."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(round(delay, 6))
        self.now += delay


@pytest.mark.parametrize("speed", [1.0, 2.0, 10.0])
async def test_speed_sleeps_event_gaps_over_speed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, speed: float
) -> None:
    clock = FakeClock()
    monkeypatch.setattr(pacing, "_now", clock.monotonic)
    monkeypatch.setattr(pacing, "_sleep", clock.sleep)
    # event times (s): 0, 0, 1, 3, 2 (late row: no going back), 6
    path = write_text(
        tmp_path / "t.csv", "symbol,ts,price\nA,0,1\nA,0,1\nA,1,1\nA,3,1\nA,2,1\nA,6,1"
    )
    slices = [f["ts_ns"].to_list() async for f in ReplaySource([path], speed=speed).batches()]
    s = 10**9
    assert slices == [[0, 0], [s], [3 * s, 2 * s], [6 * s]]
    assert clock.sleeps == [pytest.approx(g / speed) for g in (1, 2, 3)]
    assert clock.now == pytest.approx(100 + 6 / speed)


async def test_no_speed_never_sleeps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(pacing, "_sleep", clock.sleep)
    path = write_text(tmp_path / "t.csv", "symbol,ts,price\nA,0,1\nA,100,1")
    assert (await collect(ReplaySource([path]))).height == 2
    assert clock.sleeps == []
