"""Hypothesis strategies for NATS message bodies: JSON ticks, Pulse envelopes and Arrow IPC
tables of every shape a careless or hostile publisher sends, valid ones among them."""

from __future__ import annotations

import io
import json
import random
from decimal import Decimal
from typing import Any

import hypothesis.strategies as st
import pyarrow as pa
import pyarrow.ipc as ipc

T0_MS = 1_704_186_000_000  # 2024-01-02T09:00:00Z

# JSON values a field may hold, from the plausible to the absurd.
_ANY_JSON = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["AAA", " BBB ", "", "2024-01-02T09:30:00Z", "1e30", "-1", "NaN", "100.25"]),
    st.sampled_from([10**30, -(10**30), 2**63, 2**64 - 1, True, False]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["x", "y"]), st.integers(), max_size=2),
)
_GOOD = {
    "symbol": st.sampled_from(["AAA", "BBB"]),
    "price": st.floats(min_value=1, max_value=1_000).map(lambda x: round(x, 2)),
    "size": st.integers(min_value=0, max_value=100),
    "ts": st.integers(min_value=T0_MS, max_value=T0_MS + 3_600_000),
}


@st.composite
def json_tick(draw: st.DrawFn) -> dict[str, Any]:
    """A trade or quote object: each field good, absurd or missing."""
    quote = draw(st.booleans())
    names = ["symbol", "bid", "ask", "timestamp"] if quote else ["symbol", "price", "size", "ts"]
    tick: dict[str, Any] = {}
    for name in names:
        choice = draw(st.integers(0, 5))
        if choice == 0:
            continue  # missing
        good = _GOOD.get({"bid": "price", "ask": "price", "timestamp": "ts"}.get(name, name))
        tick[name] = draw(_ANY_JSON if choice == 1 or good is None else good)
    if quote and "bid" not in tick and "ask" not in tick:
        tick["bid"] = draw(_ANY_JSON)
    return tick


@st.composite
def json_body(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        payload: Any = draw(json_tick())
    elif kind == 1:
        payload = draw(st.lists(json_tick(), max_size=4))
    elif kind == 2:
        payload = {"ts": 1.0, "key": "k", "meta": {}, "payload": draw(json_tick())}
    elif kind == 3:
        payload = draw(_ANY_JSON)
    else:
        text = json.dumps(draw(json_tick())).encode()
        return text[: draw(st.integers(0, len(text)))]  # cut short
    return json.dumps(payload).encode()


_COLUMN_NAMES = ["symbol", "ts", "ts_ns", "price", "size", "bid", "ask", "note"]
_TYPES: list[pa.DataType] = [
    pa.int64(),
    pa.uint64(),
    pa.int8(),
    pa.float64(),
    pa.float32(),
    pa.string(),
    pa.large_string(),
    pa.bool_(),
    pa.timestamp("ns"),
    pa.timestamp("ms", tz="UTC"),
    pa.list_(pa.int64()),
    pa.binary(),
    pa.dictionary(pa.int32(), pa.string()),
    pa.decimal128(10, 2),
]
_POOLS: dict[str, list[Any]] = {
    "int": [0, 1, -1, 2**62, T0_MS, T0_MS * 1_000_000, 100],
    "uint": [0, 1, 2**64 - 1, T0_MS * 1_000_000, 100],
    "float": [0.0, -1.0, 1.5, float("nan"), float("inf"), 1e300, 100.25],
    "text": ["AAA", "", " BBB ", "2024-01-02T09:30:00Z", "1e30", "x", "100.5"],
    "bool": [True, False],
    "list": [[1], []],
    "binary": [b"\x00", b"AAA"],
    "decimal": [Decimal("1.50"), Decimal("-1.00"), Decimal("100.25")],
}


def _pool(kind: pa.DataType) -> list[Any]:
    if pa.types.is_unsigned_integer(kind):
        return _POOLS["uint"]
    if pa.types.is_integer(kind) or pa.types.is_timestamp(kind):
        return _POOLS["int"]
    if pa.types.is_floating(kind):
        return _POOLS["float"]
    if pa.types.is_boolean(kind):
        return _POOLS["bool"]
    if pa.types.is_list(kind):
        return _POOLS["list"]
    if pa.types.is_binary(kind):
        return _POOLS["binary"]
    if pa.types.is_decimal(kind):
        return _POOLS["decimal"]
    return _POOLS["text"]


def _column(kind: pa.DataType, rows: int, rng: random.Random) -> pa.Array:
    values = [None if rng.random() < 0.1 else rng.choice(_pool(kind)) for _ in range(rows)]
    try:
        if pa.types.is_dictionary(kind):
            return pa.array(values, type=pa.string()).dictionary_encode()
        return pa.array(values, type=kind)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError):
        return pa.nulls(rows, type=kind)


def _good_table(rows: int, rng: random.Random) -> pa.Table:
    return pa.table(
        {
            "symbol": [rng.choice(["AAA", "BBB"]) for _ in range(rows)],
            "ts_ns": [(T0_MS + rng.randrange(3_600_000)) * 1_000_000 for _ in range(rows)],
            "price": [round(rng.uniform(1, 1_000), 2) for _ in range(rows)],
            "size": [float(rng.randrange(100)) for _ in range(rows)],
        }
    )


@st.composite
def arrow_body(draw: st.DrawFn) -> bytes:
    """An Arrow IPC stream or file of a table good, of odd columns, or cut short."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    rows = draw(st.integers(0, 4))
    if draw(st.booleans()):
        table = _good_table(rows, rng)
    else:
        names = draw(st.lists(st.sampled_from(_COLUMN_NAMES), min_size=1, max_size=5))
        kinds = [draw(st.sampled_from(_TYPES)) for _ in names]
        columns = [_column(kind, rows, rng) for kind in kinds]
        table = pa.Table.from_arrays(columns, names=names)
    sink = io.BytesIO()
    opener = ipc.new_file if draw(st.booleans()) else ipc.new_stream
    with opener(sink, table.schema) as writer:
        writer.write_table(table)
    data = sink.getvalue()
    if draw(st.integers(0, 5)) == 0:
        data = data[: draw(st.integers(0, len(data)))]  # cut short
    return data


def any_body() -> st.SearchStrategy[bytes]:
    """A body of any kind: JSON, Arrow, or bytes that are neither."""
    return st.one_of(json_body(), arrow_body(), st.binary(max_size=40))


def wrongly_typed(body: bytes) -> bool:
    """True when a JSON body holds a tick field of a type no tick field has: a symbol that is
    no text, a number that is a boolean, list or object, a time beyond 64-bit nanoseconds.
    (The simple reference the decoder's type checks are held to.)"""
    try:
        payload = json.loads(body)
    except ValueError:
        return False
    items = payload if isinstance(payload, list) else [payload]
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("meta"), dict) and "payload" in item:
            item = item["payload"]
        if not isinstance(item, dict) or not ("price" in item or "bid" in item or "ask" in item):
            return False  # not a tick at all: poison for another reason
    return any(_wrong(item) for item in items)


def _wrong(item: dict[str, Any]) -> bool:
    if isinstance(item.get("meta"), dict) and "payload" in item:
        item = item["payload"]
    trade = "price" in item
    symbol = item.get("symbol")
    if symbol is not None and not isinstance(symbol, str):
        return True
    ts = item.get("ts" if trade else "timestamp")
    if isinstance(ts, bool | list | dict) or (isinstance(ts, int) and not -(2**63) <= ts < 2**63):
        return True
    numbers = ("price", "size") if trade else ("bid", "ask", "bid_size", "ask_size")
    return any(isinstance(item.get(name), bool | list | dict) for name in numbers)
