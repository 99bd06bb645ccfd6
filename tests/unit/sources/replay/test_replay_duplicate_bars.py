"""A bar file with the same instrument and time twice: the repeat is a bad row, not a second bar."""

from __future__ import annotations

from pathlib import Path

import pytest
from source_helpers import collect, write_text

from market_data_pipeline.errors import BadInputError
from market_data_pipeline.sources.replay.source import ReplaySource

BARS = """
symbol,ts,open,high,low,close,volume
SPY,2024-01-02T09:30:00Z,10,11,9,10.5,100
SPY,2024-01-02T09:31:00Z,10,11,9,10.5,100
QQQ,2024-01-02T09:31:00Z,20,21,19,20.5,100
SPY,2024-01-02T09:31:00Z,10,12,9,11.5,300
"""


async def test_repeated_bar_fails_naming_its_line(tmp_path: Path) -> None:
    source = ReplaySource([write_text(tmp_path / "bars.csv", BARS)])
    with pytest.raises(BadInputError, match=r"row 5, field ts: duplicate bar"):
        await collect(source)


async def test_repeated_bar_is_skipped_and_counted(tmp_path: Path) -> None:
    source = ReplaySource([write_text(tmp_path / "bars.csv", BARS)], on_bad_row="skip")
    frame = await collect(source)
    assert frame.height == 3
    assert source.bad_reasons == {"duplicate bar": 1}
    assert frame.filter(frame["symbol"] == "SPY")["volume"].to_list() == [100.0, 100.0]
