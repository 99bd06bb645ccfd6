"""Frame shapes: one bar schema, the input shape derived from it, one conform, one empty frame."""

from __future__ import annotations

import polars as pl
import pytest

from market_data_pipeline import frames
from market_data_pipeline.defaults import KEY_COLUMNS, TABLE_COLUMNS, VALUE_COLUMNS
from market_data_pipeline.errors import BadInputError


def test_bar_schema_is_the_table_with_ts_ns() -> None:
    assert TABLE_COLUMNS == KEY_COLUMNS + VALUE_COLUMNS
    stored = {"ts_ns": "ts", "end_ts_ns": "end_ts"}
    assert [stored.get(c, c) for c in frames.BAR_SCHEMA] == list(TABLE_COLUMNS)


def test_bar_input_schema_is_the_bar_schema_without_resolution() -> None:
    activity = ("resolution", "end_ts_ns", "incomplete")  # input bars are time bars
    expected = {k: v for k, v in frames.BAR_SCHEMA.items() if k not in activity}
    assert list(frames.BAR_INPUT_SCHEMA.items()) == list(expected.items())


def test_empty_bars_has_the_bar_schema_and_each_call_is_a_new_frame() -> None:
    first = frames.empty_bars()
    assert first.height == 0 and first.schema == pl.Schema(frames.BAR_SCHEMA)
    grown = pl.concat([first, pl.DataFrame([_bar()], schema=frames.BAR_SCHEMA, orient="row")])
    assert grown.height == 1
    assert frames.empty_bars().height == 0


def _bar() -> tuple[object, ...]:
    return ("ES", "1m", 0, 1.0, 2.0, 0.5, 1.5, 10.0, 1.2, 3, None, False)


def test_conform_orders_casts_and_drops_extra_columns() -> None:
    frame = pl.DataFrame(
        {"size": [1, 2], "extra": ["x", "y"], "price": [1, 2], "ts_ns": [5, 6], "symbol": "A"}
    )
    out = frames.conform(frame, frames.TICK_SCHEMA, what="tick")
    assert out.schema == pl.Schema(frames.TICK_SCHEMA)
    assert out.rows() == [("A", 5, 1.0, 1.0), ("A", 6, 2.0, 2.0)]


def test_conform_names_missing_columns() -> None:
    frame = pl.DataFrame({"symbol": ["A"], "ts_ns": [1]})
    with pytest.raises(BadInputError, match="tick frame lacks column"):
        frames.conform(frame, frames.TICK_SCHEMA, what="tick")


def test_conform_names_the_column_it_cannot_cast() -> None:
    frame = pl.DataFrame({"symbol": ["A"], "ts_ns": [1], "price": ["high"], "size": [1.0]})
    with pytest.raises(BadInputError, match="field price: cannot read as Float64"):
        frames.conform(frame, frames.TICK_SCHEMA, what="tick")


def test_conform_refuses_nulls_only_in_required_columns() -> None:
    frame = pl.DataFrame(
        {"symbol": ["A"], "ts_ns": [1], "price": [None], "size": [1.0]},
        schema_overrides={"price": pl.Float64},
    )
    assert frames.conform(frame, frames.TICK_SCHEMA, ("symbol",), what="tick").height == 1
    with pytest.raises(BadInputError, match="field price: 1 null value"):
        frames.conform(frame, frames.TICK_SCHEMA, ("price",), what="tick")
