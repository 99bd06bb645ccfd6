"""Decode one bus message body into a tick frame, or say why it is poison.

Accepted bodies, detected per message:

- Arrow IPC (stream or file format) of a table with ``symbol``, ``ts_ns`` (or ``ts``) and either
  ``price``/``size`` (trades) or ``bid``/``ask`` (quotes): the batch format for throughput;
- a Core ``Trade`` or ``Quote`` as a JSON object (``Trade.ts``, ``Quote.timestamp``; prices as
  strings or numbers, the way pydantic serialises ``Decimal``);
- Core's Pulse envelope of one (``{ts, key, meta, payload}``) whose payload is a Trade or Quote;
- a JSON array of any of those (a batch).

Every row goes through the same checks as a replayed file (``cleaning.CHECKS``): a message with
one bad row is poison as a whole, so a batch is never taken in half. Quotes become ticks at the
mid price with size 0, as in a replay. ``PoisonMessageError`` carries a short ``category`` (for
the counters) and a full reason (for the dead-letter headers).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc

from ... import frames
from ...errors import BadInputError
from ..base import TickKind
from ..cleaning import CHECKS, clean

ARROW_STREAM_MAGIC = b"\xff\xff\xff\xff"
ARROW_FILE_MAGIC = b"ARROW1"
ARROW_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # the end-of-stream marker
SPLICE_BYTES = 8 * 2**20  # Arrow stream bodies read as one stream, about this many bytes at once
_REASON_MAX = 300
_QUOTE_FIELDS = ("bid", "ask", "bid_size", "ask_size")


class PoisonMessageError(BadInputError):
    """A message that is no tick body; ``category`` groups reasons for counting."""

    def __init__(self, category: str, detail: str = "") -> None:
        self.category = category
        text = f"{category}: {detail}" if detail else category
        super().__init__(text[:_REASON_MAX])


@dataclass
class Decoded:
    """The ticks of a run of messages and, by message index, the poison ones (no ticks taken)."""

    frame: pl.DataFrame
    poison: dict[int, PoisonMessageError] = field(default_factory=dict)


def decode_body(data: bytes) -> pl.DataFrame:
    """Return the ticks of one message body as a ``TICK_SCHEMA`` frame; raise if poison."""
    decoded = decode_messages([data])
    if decoded.poison:
        raise decoded.poison[0]
    return decoded.frame


def decode_messages(bodies: list[bytes]) -> Decoded:
    """Decode many bodies at once: consecutive messages of one format, kind and (for Arrow)
    schema are checked together, in one vectorised pass; a bad row still poisons only its own
    message.

    Whatever a body makes the decoder raise is a reason to dead-letter it, never a crash that
    would stop the stream at it for good: a batch that fails as a whole is decoded again
    message by message, and a message that fails alone is poison (``undecodable``).
    """
    try:
        return _decode(bodies)
    except MemoryError:
        raise  # the process's trouble, not the message's
    except Exception as exc:
        if len(bodies) == 1:
            return Decoded(_no_ticks(), {0: _undecodable(exc)})
    poison: dict[int, PoisonMessageError] = {}
    parts: list[pl.DataFrame] = []
    for index, body in enumerate(bodies):
        alone = decode_messages([body])
        if alone.poison:
            poison[index] = alone.poison[0]
        elif alone.frame.height:
            parts.append(alone.frame)
    return Decoded(pl.concat(parts, how="vertical") if parts else _no_ticks(), poison)


def _undecodable(exc: Exception) -> PoisonMessageError:
    return PoisonMessageError("undecodable", f"{type(exc).__name__}: {exc}")


def _no_ticks() -> pl.DataFrame:
    return pl.DataFrame(schema=frames.TICK_SCHEMA)


def _decode(bodies: list[bytes]) -> Decoded:
    poison: dict[int, PoisonMessageError] = {}
    parts: list[pl.DataFrame] = []
    pending: _Group | None = None
    for index, data in enumerate(bodies):
        try:
            key, rows = _read(data)
            if pending is None or pending.key != key:
                group = _group_for(key)  # a schema that holds no ticks is poison here
                if pending is not None:
                    parts.append(pending.check(poison))
                pending = group
        except PoisonMessageError as exc:
            poison[index] = exc
            continue
        pending.add(index, rows)
    if pending is not None:
        parts.append(pending.check(poison))
    parts = [p for p in parts if p.height]
    if not parts:
        return Decoded(_no_ticks(), poison)
    frame = pl.concat(parts, how="vertical") if len(parts) > 1 else parts[0]
    return Decoded(frame, poison)


def _read(data: bytes) -> tuple[tuple[Any, ...], Any]:
    """Parse one body: the key of the group it can be checked with, and its rows (an Arrow
    table, dicts, or an Arrow stream's body, read with its group). What a key implies is
    worked out once per group."""
    if data.startswith(ARROW_STREAM_MAGIC):
        return ("arrow stream", _stream_head(data)), data
    if data.startswith(ARROW_FILE_MAGIC):
        table = _arrow_table(data)
        return ("arrow", table.schema), table
    kind, rows = _json_rows(data)
    return ("json", kind), rows


def _group_for(key: tuple[Any, ...]) -> _Group:
    if key[0] == "arrow stream":
        return _ArrowStreams(key[1])
    if key[0] == "arrow":
        return _ArrowTables(key[1])
    return _JsonRows(key[1])


class _Group:
    """Rows of consecutive messages that can be checked in one pass (``key`` says which)."""

    kind: TickKind
    key: tuple[Any, ...]

    def __init__(self) -> None:
        self.owners: list[int] = []  # message index, per message added
        self.counts: list[int] = []  # its rows

    def add(self, index: int, rows: Any) -> None:
        self.owners.append(index)
        self.counts.append(len(rows))
        self._keep(rows)

    def _keep(self, rows: Any) -> None:
        raise NotImplementedError

    def _batch(self, poison: dict[int, PoisonMessageError]) -> pa.RecordBatch:
        raise NotImplementedError

    def _counts(self) -> list[int]:
        """Rows per message, in ``owners`` order (asked only when some row is bad)."""
        return self.counts

    def check(self, poison: dict[int, PoisonMessageError]) -> pl.DataFrame:
        """Return the good messages' ticks; record each bad message's first bad row."""
        batch = self._batch(poison)
        cleaned = clean(batch, self.kind, symbol=None, ts_unit="auto", blank=None)
        frame = cleaned.frame.select(list(frames.TICK_SCHEMA))
        code = cleaned.code
        if not code.len() or code.max() == 0:
            return frame
        counts = self._counts()
        owner = (
            pl.Series("owner", self.owners, dtype=pl.Int64)
            .repeat_by(pl.Series(counts, dtype=pl.UInt32))
            .explode()
        )
        starts = dict(zip(self.owners, _starts(counts), strict=True))
        first_row: dict[int, int] = {}
        for row in (code > 0).arg_true().to_list():
            first_row.setdefault(int(owner[row]), row)
        for msg, row in first_row.items():
            poison[msg] = self._reason(batch, int(code[row]), row, msg, row - starts[msg])
        return frame.filter(~owner.is_in(list(first_row)))

    def _reason(
        self, batch: pa.RecordBatch, code: int, row: int, msg: int, within: int
    ) -> PoisonMessageError:
        """Why message ``msg`` is poison: its first bad row, ``row`` of the batch."""
        return _row_error(batch, self.kind, code, row, within)


def _starts(counts: list[int]) -> list[int]:
    out, at = [], 0
    for count in counts:
        out.append(at)
        at += count
    return out


def encode_arrow(ticks: pl.DataFrame) -> bytes:
    """Encode a tick frame as one Arrow IPC stream (what ``mdp publish`` sends by default)."""
    sink = io.BytesIO()
    ticks.write_ipc_stream(sink, compression="uncompressed")
    return sink.getvalue()


# -- Arrow ---------------------------------------------------------------------------------------
def _arrow_table(data: bytes) -> pa.Table:
    try:
        reader: Any = (
            ipc.open_file(pa.py_buffer(data))
            if data.startswith(ARROW_FILE_MAGIC)
            else ipc.open_stream(pa.py_buffer(data))
        )
        return reader.read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise PoisonMessageError("bad Arrow IPC", str(exc)) from None


class _ArrowTables(_Group):
    """Arrow tables of consecutive messages with one schema, checked as one batch."""

    def __init__(self, schema: pa.Schema) -> None:
        super().__init__()
        names = schema.names
        _refuse_ambiguous(names)
        # ``ts_ns`` is the time column too (what ``mdp publish`` sends).
        self.names = ["ts" if n == "ts_ns" else n for n in names]
        for name in ("ts", "symbol"):
            if name not in self.names:
                raise PoisonMessageError("not ticks", f"no {name} column")
        self.kind = _arrow_kind(names)
        self.key = ("arrow", schema)
        self.tables: list[pa.Table] = []

    def _keep(self, rows: Any) -> None:
        self.tables.append(rows)

    def _batch(self, poison: dict[int, PoisonMessageError]) -> pa.RecordBatch:
        return self._combined(self.tables)

    def _combined(self, tables: list[pa.Table]) -> pa.RecordBatch:
        if not tables or sum(table.num_rows for table in tables) == 0:
            return pa.RecordBatch.from_pydict({n: [] for n in self.names})
        return pa.concat_tables(tables).rename_columns(self.names).combine_chunks().to_batches()[0]


def _stream_head(data: bytes) -> bytes:
    """Return the schema message that opens an Arrow IPC stream: the key of its group."""
    end = 8 + int.from_bytes(data[4:8], "little", signed=True)
    if not 8 < end <= len(data):
        raise PoisonMessageError("bad Arrow IPC", "no schema message")
    return data[:end]


class _ArrowStreams(_ArrowTables):
    """Arrow IPC streams of consecutive messages that open with the same schema message.

    Their record batches are read as a few streams of ``SPLICE_BYTES``, not one by one: each
    pyarrow call lets other threads run and takes Python's lock back when done, and beside a
    busy thread (the event loop fetching the next messages) every take-back waits for that
    thread's switch interval. A group that does not read that way (a damaged message, several
    batches in one, dictionaries) is read message by message, as Arrow files are.
    """

    def __init__(self, head: bytes) -> None:
        try:
            schema = ipc.read_schema(pa.py_buffer(head))
        except (pa.ArrowInvalid, OSError) as exc:
            raise PoisonMessageError("bad Arrow IPC", str(exc)) from None
        super().__init__(schema)
        self.key = ("arrow stream", head)
        self.head = head
        self.bodies: list[bytes] = []
        self.pieces: list[pa.Table] = []  # the bodies as read: spliced, or one table each
        self.one_each = False
        self.whole = not any(pa.types.is_dictionary(field.type) for field in schema)

    def add(self, index: int, rows: Any) -> None:
        self.owners.append(index)  # rows per message are known once the bodies are read
        self.bodies.append(rows)

    def _batch(self, poison: dict[int, PoisonMessageError]) -> pa.RecordBatch:
        spliced = self._spliced() if self.whole else None
        self.one_each = spliced is None
        self.pieces = self._one_by_one(poison) if spliced is None else spliced
        return self._combined(self.pieces)

    def _counts(self) -> list[int]:
        if self.one_each:
            return [piece.num_rows for piece in self.pieces]
        # Spliced: one message, one record batch, one chunk (read_all keeps each as its own).
        return [len(chunk) for piece in self.pieces for chunk in piece.column(0).chunks]

    def _spliced(self) -> list[pa.Table] | None:
        """Read the bodies' record batches as streams of about ``SPLICE_BYTES`` each. (Joining
        more at once cost more than it saved: a fresh buffer of tens of MB is new memory to
        the process each time.) ``None`` unless every body gave one batch with rows."""
        tables, start, size = [], 0, 0
        for end, body in enumerate(self.bodies, start=1):
            size += len(body)
            if size >= SPLICE_BYTES or end == len(self.bodies):
                read = self._read_spliced(self.bodies[start:end])
                if read is None:
                    return None
                tables.append(read)
                start, size = end, 0
        if sum(table.column(0).num_chunks for table in tables) != len(self.bodies):
            return None  # a message of several batches, or of no rows
        return tables

    def _read_spliced(self, bodies: list[bytes]) -> pa.Table | None:
        skip = len(self.head)
        parts: list[bytes | memoryview] = [self.head]
        for body in bodies:
            end = len(body) - len(ARROW_EOS) if body.endswith(ARROW_EOS) else len(body)
            parts.append(memoryview(body)[skip:end])
        parts.append(ARROW_EOS)
        try:
            table: pa.Table = ipc.open_stream(pa.py_buffer(b"".join(parts))).read_all()
        except (pa.ArrowInvalid, OSError):
            return None
        return table

    def _one_by_one(self, poison: dict[int, PoisonMessageError]) -> list[pa.Table]:
        tables, owners = [], []
        for index, body in zip(self.owners, self.bodies, strict=True):
            try:
                tables.append(_arrow_table(body))
            except PoisonMessageError as exc:
                poison[index] = exc
                continue
            owners.append(index)
        self.owners = owners
        return tables


def _refuse_ambiguous(names: list[str]) -> None:
    """Raise when two columns could feed one field: which one is meant is not ours to guess."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise PoisonMessageError("ambiguous columns", f"two {name!r} columns")
        seen.add(name)
    if "ts" in seen and "ts_ns" in seen:
        raise PoisonMessageError("ambiguous columns", "both 'ts' and 'ts_ns'")


def _arrow_kind(names: list[str]) -> TickKind:
    if "bid" in names or "ask" in names:
        return "quotes"
    if "price" in names:
        return "trades"
    raise PoisonMessageError("not ticks", f"columns {names[:10]} have no price or bid/ask")


# -- JSON ----------------------------------------------------------------------------------------
def _json_rows(data: bytes) -> tuple[TickKind, list[dict[str, Any]]]:
    head = data[:64].lstrip()
    if not head.startswith((b"{", b"[")):
        if not data:
            raise PoisonMessageError("empty body")
        raise PoisonMessageError("unknown body", "neither JSON nor Arrow IPC")
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise PoisonMessageError("not JSON", str(exc)) from None
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise PoisonMessageError("empty batch")
    ticks = [_unwrap(item, index) for index, item in enumerate(items)]
    kinds = {kind for kind, _ in ticks}
    if len(kinds) > 1:
        raise PoisonMessageError("mixed batch", "trades and quotes in one message")
    return kinds.pop(), [tick for _, tick in ticks]


class _JsonRows(_Group):
    """JSON ticks of consecutive messages of one kind, checked together."""

    def __init__(self, kind: TickKind) -> None:
        super().__init__()
        self.kind = kind
        self.key = ("json", kind)
        self.rows: list[dict[str, Any]] = []

    def _keep(self, rows: Any) -> None:
        self.rows.extend(rows)

    def _reason(
        self, batch: pa.RecordBatch, code: int, row: int, msg: int, within: int
    ) -> PoisonMessageError:
        if len(self.owners) == 1:
            return super()._reason(batch, code, row, msg, within)
        # A column's type is inferred from all its rows (one text value makes the numbers
        # text): the message is checked again alone, so its reason is the one it gives alone.
        at = self.owners.index(msg)
        start = sum(self.counts[:at])
        alone = _JsonRows(self.kind)
        alone.add(msg, self.rows[start : start + self.counts[at]])
        reasons: dict[int, PoisonMessageError] = {}
        alone.check(reasons)
        return reasons[msg]

    def _batch(self, poison: dict[int, PoisonMessageError]) -> pa.RecordBatch:
        fields = ("price", "size") if self.kind == "trades" else _QUOTE_FIELDS
        ts_key = "ts" if self.kind == "trades" else "timestamp"
        columns = {name: [r.get(name) for r in self.rows] for name in ("symbol", *fields)}
        columns["ts"] = [r.get(ts_key) for r in self.rows]
        return pa.RecordBatch.from_pydict({k: _column(k, v) for k, v in columns.items()})


def _unwrap(item: Any, index: int) -> tuple[TickKind, dict[str, Any]]:
    if isinstance(item, dict) and isinstance(item.get("meta"), dict) and "payload" in item:
        item = item["payload"]  # Core's Pulse envelope of one
    if not isinstance(item, dict):
        raise PoisonMessageError("not a tick", f"element {index} is not a JSON object")
    if "price" in item:
        kind: TickKind = "trades"
    elif "bid" in item or "ask" in item:
        kind = "quotes"
    else:
        raise PoisonMessageError("not a tick", f"element {index} is neither a Trade nor a Quote")
    _check_types(item, kind, index)
    return kind, item


_INT64 = range(-(2**63), 2**63)
# Per kind: the time field, and the number fields with the reason a wrong type counts under.
_NUMBERS: dict[str, tuple[str, dict[str, str]]] = {
    "trades": ("ts", {"price": "bad price", "size": "bad size"}),
    "quotes": (
        "timestamp",
        {
            "bid": "bad bid/ask",
            "ask": "bad bid/ask",
            "bid_size": "bad size",
            "ask_size": "bad size",
        },
    ),
}


def _check_types(item: dict[str, Any], kind: TickKind, index: int) -> None:
    """Refuse a JSON value of the wrong type instead of reading it as something else: a symbol
    that is no text (an object is not stored as its ``repr``), a number that is a boolean (not
    1.0), an object or a list, a time beyond 64-bit nanoseconds."""
    symbol = item.get("symbol")
    if symbol is not None and not isinstance(symbol, str):
        raise _bad_value("bad symbol", index, "symbol", symbol)
    ts_key, numbers = _NUMBERS[kind]
    ts = item.get(ts_key)
    if ts is not None and not (isinstance(ts, str) or (_is_number(ts) and _fits(ts))):
        raise _bad_value("bad timestamp", index, ts_key, ts)
    for name, reason in numbers.items():
        value = item.get(name)
        if value is not None and not (isinstance(value, str) or _is_number(value)):
            raise _bad_value(reason, index, name, value)


def _fits(number: float) -> bool:
    return not isinstance(number, int) or number in _INT64


def _bad_value(reason: str, index: int, name: str, value: Any) -> PoisonMessageError:
    return PoisonMessageError(reason, f"row {index}, field {name}: {value!r:.80}")


def _column(name: str, values: list[Any]) -> pa.Array:
    if name in ("symbol", "ts") or any(isinstance(v, str) for v in values):
        # Mixed strings and numbers (Decimal as text, epoch numbers): the checks parse text.
        if name == "ts" and all(_is_number(v) or v is None for v in values):
            whole = all(isinstance(v, int) or v is None for v in values)
            return pa.array(values, type=pa.int64() if whole else pa.float64())
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())
    try:
        return pa.array(values, type=pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# -- checks ----------------------------------------------------------------------------------------
def _row_error(
    batch: pa.RecordBatch, kind: TickKind, code: int, row: int, within: int
) -> PoisonMessageError:
    check = CHECKS[kind][code - 1]
    raw = batch.column(check.field)[row].as_py() if check.field in batch.schema.names else None
    detail = "missing" if raw is None else repr(raw)
    return PoisonMessageError(check.reason, f"row {within}, field {check.field}: {detail}")
