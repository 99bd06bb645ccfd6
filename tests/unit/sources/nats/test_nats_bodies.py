"""Message bodies decoded in groups: one vectorised check, poison only for the bad message."""

from __future__ import annotations

import io
import json

import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from nats_fuzz import any_body, wrongly_typed
from polars.testing import assert_frame_equal

from market_data_pipeline.sources.nats.bodies import decode_messages, encode_arrow

T0_NS = 1_704_186_000 * 1_000_000_000


def _ticks(first: int, n: int, symbol: str = "AAA") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "ts_ns": [T0_NS + (first + i) * 1_000_000 for i in range(n)],
            "price": [100.0 + first + i for i in range(n)],
            "size": [1.0] * n,
        }
    )


def test_arrow_messages_checked_together_poison_only_the_message_with_a_bad_row() -> None:
    bad = _ticks(10, 5).with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(-1.0).otherwise(pl.col("price")).alias("price")
    )
    bodies = [encode_arrow(_ticks(0, 10)), encode_arrow(bad), encode_arrow(_ticks(15, 5))]
    decoded = decode_messages(bodies)
    assert list(decoded.poison) == [1]
    assert "row 3, field price" in str(decoded.poison[1])
    assert decoded.frame["price"].to_list() == _ticks(0, 10)["price"].to_list() + list(
        _ticks(15, 5)["price"]
    )


def test_mixed_formats_and_schemas_keep_message_order() -> None:
    other_schema = _ticks(20, 3).with_columns(pl.col("size").cast(pl.Int64))
    trade = {"symbol": "BBB", "price": "7.5", "size": "2", "ts": "2024-01-02T09:00:00Z"}
    bodies = [
        encode_arrow(_ticks(0, 2)),
        json.dumps([trade, trade]).encode(),
        encode_arrow(other_schema),
        b"nonsense",
        encode_arrow(_ticks(30, 1)),
    ]
    decoded = decode_messages(bodies)
    assert list(decoded.poison) == [3]
    assert decoded.frame["symbol"].to_list() == [
        "AAA",
        "AAA",
        "BBB",
        "BBB",
        "AAA",
        "AAA",
        "AAA",
        "AAA",
    ]
    assert decoded.frame.height == 8


def test_symbols_are_stripped_of_surrounding_whitespace_in_every_message() -> None:
    # Arrow messages written by polars carry string views; the symbols come out stripped
    # whether all, some or none of them need it.
    padded = _ticks(0, 3, " AAA\t").with_columns(
        pl.Series("symbol", [" AAA\t", "AAA", "\u00a0BBB "])
    )
    bodies = [encode_arrow(_ticks(10, 2)), encode_arrow(padded), encode_arrow(_ticks(20, 1, "CC "))]
    decoded = decode_messages(bodies)
    assert not decoded.poison
    assert decoded.frame["symbol"].to_list() == ["AAA", "AAA", "AAA", "AAA", "BBB", "CC"]


def test_prices_and_times_written_as_text_by_polars_are_read_as_numbers_and_times() -> None:
    # Polars writes text columns as Arrow string views: they are text like any other.
    as_text = pl.DataFrame(
        {
            "symbol": ["AAA", "BBB"],
            "ts": ["2024-01-02T09:00:00Z", "2024-01-02T09:00:01Z"],
            "price": ["101.25", " 99.5 "],
            "size": ["3", "4"],
        }
    )
    decoded = decode_messages([encode_arrow(as_text)])
    assert not decoded.poison
    assert decoded.frame["price"].to_list() == [101.25, 99.5]
    assert decoded.frame["size"].to_list() == [3.0, 4.0]
    assert decoded.frame["ts_ns"].to_list() == [T0_NS, T0_NS + 1_000_000_000]


def _two_batches(first: pa.Table, second: pa.Table) -> bytes:
    sink = io.BytesIO()
    with ipc.new_stream(sink, first.schema) as writer:
        writer.write_table(first)
        writer.write_table(second)
    return sink.getvalue()


def test_arrow_streams_read_together_fall_back_one_by_one_when_one_does_not_read() -> None:
    """Streams opening with the same schema are read as one; a truncated message, one of two
    record batches and one of none are still read right, and only the damaged one is poison."""
    good = [encode_arrow(_ticks(i * 10, 10)) for i in range(4)]
    truncated = good[1][: len(good[1]) // 2]
    empty = encode_arrow(_ticks(0, 0))
    two = _two_batches(_ticks(10, 2).to_arrow(), _ticks(12, 3).to_arrow())
    cases = {
        "together": ([good[0], good[2], good[3]], {}, 30),
        "truncated": ([good[0], truncated, good[3]], {1: "bad Arrow IPC"}, 20),
        "two batches": ([good[0], two, good[3]], {}, 25),
        "no rows": ([good[0], empty, good[3]], {}, 20),
    }
    for name, (bodies, poison, rows) in cases.items():
        decoded = decode_messages(bodies)
        assert {i: str(e).split(":")[0] for i, e in decoded.poison.items()} == poison, name
        assert decoded.frame.height == rows, name
        assert decoded.frame["ts_ns"].is_sorted(), name  # message order kept


def test_a_bad_row_poisons_its_message_among_streams_read_together() -> None:
    bodies = [encode_arrow(_ticks(i * 10, 10)) for i in range(200)]  # past one splice
    bad = _ticks(5_000, 10).with_columns(size=pl.lit(-1.0))
    bodies[150] = encode_arrow(bad)
    decoded = decode_messages(bodies)
    assert list(decoded.poison) == [150]
    assert "row 0, field size" in str(decoded.poison[150])
    assert decoded.frame.height == 1_990


def _arrow(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


_GOOD = json.dumps({"symbol": "A", "price": 1.5, "size": 1, "ts": 1_704_186_000_000}).encode()


def _json(**fields: object) -> str:
    return json.dumps({"symbol": "A", "price": 1.5, "size": 1, "ts": 1_704_186_000_000, **fields})


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            _json(ts=10**30).encode(),
            "bad timestamp: row 0, field ts: 1000000000000000000000000000000",
        ),
        (_json(symbol={"x": 1}).encode(), "bad symbol: row 0, field symbol: {'x': 1}"),
        (_json(price=True).encode(), "bad price: row 0, field price: True"),
        (_json(size=[1]).encode(), "bad size: row 0, field size: [1]"),
        (
            b'{"symbol": "A", "bid": 1, "ask": false, "timestamp": 1}',
            "bad bid/ask: row 0, field ask: False",
        ),
        (
            _arrow(
                pa.table(
                    [pa.array(["A"]), pa.array([1]), pa.array([1.0]), pa.array([2.0])],
                    names=["symbol", "ts_ns", "price", "price"],
                )
            ),
            "ambiguous columns: two 'price' columns",
        ),
        (
            _arrow(pa.table({"symbol": ["A"], "ts": [1], "ts_ns": [2], "price": [1.0]})),
            "ambiguous columns: both 'ts' and 'ts_ns'",
        ),
    ],
)
def test_a_body_of_wrong_types_or_ambiguous_columns_is_poison_with_its_reason(
    body: bytes, reason: str
) -> None:
    decoded = decode_messages([_GOOD, body, _GOOD])
    assert {index: str(exc) for index, exc in decoded.poison.items()} == {1: reason}
    assert decoded.frame.height == 2


def test_whatever_the_decoder_raises_poisons_only_that_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from market_data_pipeline.sources.nats import bodies as nats_bodies

    real = nats_bodies._read

    def breaks_on_x(data: bytes) -> object:
        if b'"X"' in data:
            raise ZeroDivisionError("a decoder bug")
        return real(data)

    monkeypatch.setattr(nats_bodies, "_read", breaks_on_x)
    decoded = decode_messages([_GOOD, _json(symbol="X").encode(), _GOOD])
    assert {i: str(e) for i, e in decoded.poison.items()} == {
        1: "undecodable: ZeroDivisionError: a decoder bug"
    }
    assert decoded.frame.height == 2


@settings(max_examples=150, deadline=None)
@given(bodies=st.lists(any_body(), min_size=1, max_size=8))
@example(  # one text ask made the batch's ask column text: the reason said '0', alone 0.0
    bodies=[
        b"{}",
        b"{}",
        b'{"ask": ""}',
        b'{"symbol": "AAA", "bid": 1.0, "ask": 0, "timestamp": 1704186000000}',
    ]
)
def test_any_bodies_decode_together_as_each_alone_and_never_raise(bodies: list[bytes]) -> None:
    """Whatever the bodies, decoding never raises, and a batch gives what its messages give
    one by one (the batch's shared checks change nothing)."""
    together = decode_messages(bodies)
    alone = [decode_messages([body]) for body in bodies]
    assert set(together.poison) == {i for i, one in enumerate(alone) if one.poison}
    assert {i for i, body in enumerate(bodies) if wrongly_typed(body)} <= set(together.poison)
    for index, exc in together.poison.items():
        assert str(exc) == str(alone[index].poison[0]) and "\n" not in str(exc)
    frames = [one.frame for one in alone if one.frame.height]
    expected = pl.concat(frames) if frames else together.frame.clear()
    assert_frame_equal(together.frame, expected)
