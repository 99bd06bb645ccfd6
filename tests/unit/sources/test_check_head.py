"""``check_head`` (``mdp serve``'s early check) refuses a file with its replay's own error."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings
from source_helpers import collect

from market_data_pipeline.errors import BadInputError
from market_data_pipeline.sources.replay.source import OnBadRow, ReplaySource, check_head

HEADER = "Sym,Time,Px,Qty"
BAD_LINES = (
    "A,not-a-time,10,1",
    "A,2024-01-02T03:04:05Z,abc,1",
    "A,2024-01-02T03:04:05Z,-3,1",
    ",2024-01-02T03:04:05Z,10,1",
    "A,2024-01-02T03:04:05Z,10",  # a field short
)


def _good(i: int) -> str:
    return f"S{i % 3},2024-01-02T03:{i // 60 % 60:02d}:{i % 60:02d}Z,{10 + i % 7},1"


def _replay_error(path: Path, on_bad_row: OnBadRow) -> str | None:
    try:
        asyncio.run(collect(ReplaySource([path], on_bad_row=on_bad_row)))
    except BadInputError as exc:
        return str(exc)
    return None


def _head_error(path: Path, rows: int, on_bad_row: OnBadRow) -> str | None:
    try:
        check_head([path], rows=rows, on_bad_row=on_bad_row)
    except BadInputError as exc:
        return str(exc)
    return None


@settings(max_examples=80, deadline=None)
@given(
    rows=st.integers(1, 40),
    bad_at=st.none() | st.integers(0, 39),
    bad=st.sampled_from(BAD_LINES),
    head=st.integers(1, 30),
    on_bad_row=st.sampled_from(("fail", "skip")),
)
def test_a_refusal_is_the_replays_own_error_and_a_bad_row_in_the_head_is_found(
    rows: int, bad_at: int | None, bad: str, head: int, on_bad_row: OnBadRow
) -> None:
    lines = [_good(i) for i in range(rows)]
    if bad_at is not None and bad_at < rows:
        lines[bad_at] = bad
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ticks.csv"
        path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
        expected = _replay_error(path, on_bad_row)
        found = _head_error(path, head, on_bad_row)
    assert found is None or found == expected
    if expected is not None and bad_at is not None and bad_at < head:
        assert found == expected


def test_a_header_without_a_price_is_refused_as_the_replay_refuses_it(tmp_path: Path) -> None:
    path = tmp_path / "nocol.csv"
    path.write_text("ts,symbol,size\n1704186000000,S0,1\n", encoding="utf-8")
    with pytest.raises(BadInputError) as replay:
        ReplaySource([path])
    with pytest.raises(BadInputError) as head:
        check_head([path])
    assert str(head.value) == str(replay.value)
