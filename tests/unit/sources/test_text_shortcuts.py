"""Property tests: the shortcuts of reading text columns give what the full work gives."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market_data_pipeline.errors import BadInputError
from market_data_pipeline.sources.cleaning import _floats, _symbols
from market_data_pipeline.sources.replay.readers import read_chunks
from market_data_pipeline.sources.timestamps import _drop_wrapped_years, _years_in_range

# Years around both ends of the range, other leading characters, and odd shapes.
_HEADS = ["1677", "1678", "2261", "2262", "0999", "1999", "2024", "9999", " 2024", "+202", "1e10"]
texts = st.one_of(
    st.none(),
    st.builds(
        lambda head, tail: head + tail, st.sampled_from(_HEADS), st.text("-0123T: Z", max_size=6)
    ),
    st.text(max_size=8),
)
# One width, as most files write them: the four leading bytes are compared in place.
dated = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from([h for h in _HEADS if len(h) == 4]),
    st.just("-01-02"),
)
numbers = st.one_of(
    st.none(),
    st.from_regex(r"\s*[+-]?\d{0,4}(\.\d{0,3})?([eE][+-]?\d)?\s*", fullmatch=True),
    st.sampled_from(["nan", "inf", "-inf", " 1.5", "2.5 ", "\t3", "abc", "", "1_000", "0x10"]),
)


@settings(max_examples=500, deadline=None)
@given(values=st.one_of(st.lists(texts, min_size=1, max_size=8), st.lists(dated, max_size=8)))
def test_a_column_passed_as_in_range_has_no_year_to_drop(values: list[str | None]) -> None:
    raw = pl.Series("ts", values, dtype=pl.String)
    out = pl.Series("ts_ns", range(len(values)), dtype=pl.Int64)
    if _years_in_range(pa.array(values, pa.string())):
        assert _drop_wrapped_years(out, raw).to_list() == out.to_list()


@settings(max_examples=300, deadline=None)
@given(values=st.lists(numbers, min_size=1, max_size=8))
def test_text_numbers_read_as_stripped_text_casts(values: list[str | None]) -> None:
    batch = pa.record_batch({"price": pa.array(values, pa.string())})
    reference = pl.Series("price", values, dtype=pl.String).str.strip_chars()
    expected = reference.cast(pl.Float64, strict=False)
    got = _floats(batch, "price")
    assert got.dtype == pl.Float64
    assert got.is_nan().to_list() == expected.is_nan().to_list()
    assert got.fill_nan(0).to_list() == expected.fill_nan(0).to_list()


@pytest.mark.parametrize("column", [0, 1, 3])
def test_text_that_is_not_utf8_in_any_column_names_its_line(tmp_path: Path, column: int) -> None:
    fields = ["AAPL", "2024-01-02T14:30:00Z", "100.5", "10"]
    fields[column] = "\xe9t\xe9"
    lines = ["symbol,ts,price,size", "AAPL,2024-01-02T14:30:00Z,100.5,10", ",".join(fields)]
    path = tmp_path / "latin1.csv"
    path.write_bytes("\n".join(lines).encode("latin-1") + b"\n")
    with pytest.raises(BadInputError) as caught:
        list(read_chunks(path, {"symbol": 0, "ts": 1, "price": 2}, 100, None))
    assert caught.value.row == 3
    assert "not UTF-8" in str(caught.value)


def test_utf8_text_beyond_ascii_reads(tmp_path: Path) -> None:
    path = tmp_path / "utf8.csv"
    path.write_text("symbol,ts,price\nNESTLÉ,2024-01-02T14:30:00Z,100.5\n", encoding="utf-8")
    (chunk,) = read_chunks(path, {"symbol": 0, "ts": 1, "price": 2}, 100, None)
    assert chunk.batch.column("symbol").to_pylist() == ["NESTLÉ"]


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.text(st.sampled_from(["A", "b", "É", " ", "\t", "\u00a0", "\u3000", "."]), max_size=4),
        min_size=1,
        max_size=8,
    )
)
def test_symbols_passed_as_unpadded_need_no_strip(values: list[str]) -> None:
    symbols = _symbols(pa.record_batch({"symbol": pa.array(values, pa.large_string())}), None)
    assert symbols.to_list() == [value.strip() for value in values]
