"""A replay's share and its rows not read count rows taken, not bytes read ahead."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from source_helpers import collect

from market_data_pipeline.sources.replay.source import ReplaySource

T0 = 1_704_164_645_000_000_000


def trades(rows: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": ["AAA", "BBB"] * (rows // 2) + ["AAA"] * (rows % 2),
            "ts": T0 + np.arange(rows, dtype=np.int64) * 1_000_000,
            "price": 100.0 + np.arange(rows) % 7,
            "size": 1 + np.arange(rows) % 5,
        }
    )


async def take_first(source: ReplaySource) -> int:
    """Take one frame, as a stopped run does, and return its rows (the reader ran ahead)."""
    async for frame in source.batches():
        await source.close()
        return frame.height
    return 0


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
async def test_a_stop_after_one_frame_leaves_the_rest_counted_exactly(
    tmp_path: Path, suffix: str
) -> None:
    rows = 50_000
    path = tmp_path / f"t{suffix}"
    frame = trades(rows)
    frame.write_csv(path) if suffix == ".csv" else frame.write_parquet(path)
    source = ReplaySource([path], chunk_rows=1_000)
    taken = await take_first(source)
    assert source.rows_not_read(taken) == rows - taken
    assert source.read_fraction(taken) == pytest.approx(taken / rows)


async def test_several_files_merged_count_every_files_rows(tmp_path: Path) -> None:
    frame = trades(30_000)
    first, second = tmp_path / "a.csv", tmp_path / "b.parquet"
    frame.filter(pl.col("symbol") == "AAA").write_csv(first)
    frame.filter(pl.col("symbol") == "BBB").write_parquet(second)
    source = ReplaySource([first, second], chunk_rows=1_000)
    taken = await take_first(source)
    assert source.rows_not_read(taken) == 30_000 - taken


@settings(max_examples=15, deadline=None)
@given(
    rows=st.integers(1, 300),
    blank_at=st.lists(st.integers(0, 300), max_size=5),
    last_newline=st.booleans(),
    crlf=st.booleans(),
)
async def test_a_csv_row_count_equals_its_rows(
    tmp_path_factory: pytest.TempPathFactory,
    rows: int,
    blank_at: list[int],
    last_newline: bool,
    crlf: bool,
) -> None:
    """Counted lines less the blank ones read equal the rows a full read gives (the reference)."""
    lines = ["symbol,ts,price,size"]
    lines += [f"AAA,{T0 + i},100.5,{1 + i % 3}" for i in range(rows)]
    for at in sorted(set(blank_at), reverse=True):
        lines.insert(1 + min(at, rows), ",,,")
    end = "\r\n" if crlf else "\n"
    text = end.join(lines) + (end if last_newline else "")
    path = tmp_path_factory.mktemp("count") / "t.csv"
    path.write_bytes(text.encode())
    source = ReplaySource([path], chunk_rows=64)
    counted = source.rows_not_read(0)  # waits for the count
    assert counted is not None and counted >= rows  # blank lines not yet met are counted
    read = (await collect(source)).height
    assert read == rows
    assert source.total_rows() == rows and source.rows_not_read(read) == 0


async def test_a_compressed_csv_not_read_to_its_end_is_unknown_not_zero(tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(trades(50_000).write_csv().encode()))
    source = ReplaySource([path], chunk_rows=1_000)
    taken = await take_first(source)
    assert source.rows_not_read(taken) is None
    assert source.read_fraction(taken) is None
