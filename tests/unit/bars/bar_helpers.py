"""Helpers shared by the bar engine tests: frame builders and bar comparison."""

from __future__ import annotations

import math

import polars as pl

from market_data_pipeline.frames import BAR_SCHEMA


def ticks(rows: list[tuple[str, int, float, float]]) -> pl.DataFrame:
    """Build a tick frame from (symbol, ts_ns, price, size) rows."""
    return pl.DataFrame(rows, schema=["symbol", "ts_ns", "price", "size"], orient="row").cast(
        {"ts_ns": pl.Int64, "price": pl.Float64, "size": pl.Float64}
    )


def keyed(bars: pl.DataFrame) -> dict[tuple[str, str, int], dict[str, object]]:
    """Key bar rows by (resolution, symbol, window start); fail on a duplicate bar."""
    assert dict(bars.schema) == BAR_SCHEMA
    out: dict[tuple[str, str, int], dict[str, object]] = {}
    for row in bars.iter_rows(named=True):
        key = (row.pop("resolution"), row.pop("symbol"), row.pop("ts_ns"))
        assert key not in out, f"bar {key} emitted twice"
        out[key] = row
    return out


def assert_same_bars(
    got: dict[tuple[str, str, int], dict[str, object]],
    want: dict[tuple[str, str, int], dict[str, object]],
) -> None:
    """Compare keyed bars: exact prices, volume and trades; vwap up to float rounding."""
    assert sorted(got) == sorted(want)
    for key, row in want.items():
        other = dict(got[key])
        vwap, want_vwap = other.pop("vwap"), row["vwap"]
        assert other == {k: v for k, v in row.items() if k != "vwap"}, key
        if want_vwap is None:
            assert vwap is None, key
        else:
            assert isinstance(vwap, float) and isinstance(want_vwap, float), key
            assert math.isclose(vwap, want_vwap, rel_tol=1e-9), key
