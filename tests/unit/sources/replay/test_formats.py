"""Layouts (presets, --columns) and compressed streams."""

from __future__ import annotations

import lzma
from pathlib import Path

import pyarrow as pa
import pytest

from market_data_pipeline.errors import UsageError
from market_data_pipeline.sources.replay.formats import (
    PRESETS,
    compression,
    is_header,
    layout_for,
    open_binary,
)


def test_layouts() -> None:
    assert layout_for(None, None) is None
    assert layout_for("binance-klines", None) == PRESETS["binance-klines"]
    layout = layout_for(None, " ts, price ,size")
    assert layout is not None and layout.names == ("ts", "price", "size")
    with pytest.raises(UsageError, match="give one of them"):
        layout_for("tardis-trades", "ts,price")
    with pytest.raises(UsageError, match="distinct names"):
        layout_for(None, "ts,price,ts")
    with pytest.raises(UsageError, match="unknown --format"):
        layout_for("nasdaq-itch", None)


def test_header_is_the_layouts_own_names() -> None:
    layout = PRESETS["tardis-trades"]
    assert is_header(list(layout.names), layout)
    assert not is_header(["bitmex", "XBTUSD", "1", "2", "x", "buy", "1", "2"], layout)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.csv", None),
        ("a.csv.gz", "gz"),
        ("a.CSV.BZ2", "bz2"),
        ("a.csv.xz", "xz"),
        ("a.csv.zst", "zst"),
        ("a.csv.zstd", "zst"),
    ],
)
def test_compression_by_suffix(name: str, kind: str | None) -> None:
    assert compression(Path(name)) == kind


def test_open_binary_streams_xz_and_zstd(tmp_path: Path) -> None:
    text = b"ts,price\n1,2\n" * 1000
    xz = tmp_path / "a.csv.xz"
    xz.write_bytes(lzma.compress(text))
    zst = tmp_path / "a.csv.zst"
    with pa.CompressedOutputStream(str(zst), "zstd") as out:
        out.write(text)
    for path in (xz, zst):
        with open_binary(path) as raw:
            assert raw.read() == text
