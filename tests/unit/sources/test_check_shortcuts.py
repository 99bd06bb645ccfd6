"""Property test: a check's whole-column shortcut (``clear``) never passes a bad row."""

from __future__ import annotations

import math

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from market_data_pipeline.sources.cleaning import CHECKS, MAX_VALUE

SPECIAL = [0.0, -0.0, -1.0, math.nan, math.inf, -math.inf, MAX_VALUE, MAX_VALUE * 1.01, 1e-300]
numbers = st.one_of(st.none(), st.sampled_from(SPECIAL), st.floats(-1e3, 1e3), st.floats(0.01, 1e6))
COLUMNS = [
    "price",
    "size",
    "bid",
    "ask",
    "bid_size",
    "ask_size",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
]


@st.composite
def chunks(draw: st.DrawFn) -> pl.DataFrame:
    """A cleaned chunk's columns, mostly good, sometimes with one bad value or a null."""
    rows = draw(st.integers(1, 8))
    plain = st.floats(0.5, 1e5)
    data: dict[str, list[object]] = {
        name: draw(st.lists(draw(st.sampled_from([plain, numbers])), min_size=rows, max_size=rows))
        for name in COLUMNS
    }
    data["ts_ns"] = draw(
        st.lists(st.one_of(st.none(), st.integers(0, 10**18)), min_size=rows, max_size=rows)
    )
    data["symbol"] = draw(
        st.lists(st.sampled_from(["A", "BRK.B", "", None]), min_size=rows, max_size=rows)
    )
    data["trades"] = [1] * rows
    schema = {name: pl.Float64 for name in COLUMNS}
    return pl.DataFrame(
        data, schema={**schema, "ts_ns": pl.Int64, "symbol": pl.String, "trades": pl.Int64}
    )


@settings(max_examples=500, deadline=None)
@given(chunk=chunks())
def test_a_clear_check_has_no_bad_row_and_a_bad_row_is_never_clear(chunk: pl.DataFrame) -> None:
    for kind, checks in CHECKS.items():
        for check in checks:
            if check.clear is None:
                continue
            clear = chunk.select(check.clear).item()
            any_bad = chunk.select(check.bad.any()).item()
            assert not (clear and any_bad), (kind, check.reason, check.field)
            # The shortcut is worth having only if a clean column passes it.
            column = "ts_ns" if check.field == "ts" else check.field
            if not any_bad and chunk.get_column(column).null_count() == 0:
                assert clear, (kind, check.reason, check.field)
