"""The bars table: one column spec, the table's name, and the check of a table that exists.

Every column is written down once, in ``COLUMNS``: its SQL type in each store, whether it may be
null, and, for a column added in a later version, the default an older table is given when the
column is added in place. Opening a store creates the table from this spec when it is missing;
when it exists, ``check_table`` compares what the store reports with the spec: a missing
required column, a column of another type, no unique key on ``(symbol, resolution, ts)`` or an
extra column that a write could never fill is a ``SinkRefusedError`` naming it (no retry can fix
a table), and a missing later column is added with its default (``ALTER TABLE ... ADD COLUMN``).

To add a column in a later version, append it with ``default=`` (and to ``defaults.VALUE_COLUMNS``
and ``frames.BAR_SCHEMA``, which list the names the engine writes)::

    Column("revision", "INTEGER", "bigint", default="0"),

Only the standard library is imported here: the CLI checks ``--table`` before polars loads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ..defaults import KEY_COLUMNS, OPTIONAL_COLUMNS, TABLE_COLUMNS
from ..errors import SinkRefusedError, UsageError

Dialect = Literal["sqlite", "postgresql"]

DEFAULT_TABLE = "bars"
# PostgreSQL keeps 63 bytes of a name; a table's checkpoints live in "mdp_checkpoints_<name>".
MAX_NAME_CHARS = 40
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class Column:
    """One column of the bars table: name, SQL type per store, nullability, later default.

    ``default`` is None for a column every table has had since the first version (a table
    without it is refused); a column added later has the SQL literal an existing table's rows
    get when the column is added in place.
    """

    name: str
    sqlite: str
    postgresql: str
    nullable: bool = False
    default: str | None = None

    def sql_type(self, dialect: Dialect) -> str:
        """Return the column's type in ``dialect``."""
        return self.sqlite if dialect == "sqlite" else self.postgresql

    def definition(self, dialect: Dialect) -> str:
        """Return the column as written in CREATE TABLE or ADD COLUMN."""
        parts = [self.name, self.sql_type(dialect)]
        if not self.nullable:
            parts.append("NOT NULL")
        if self.default is not None:
            parts.append(f"DEFAULT {self.default}")
        return " ".join(parts)


COLUMNS = (
    Column("symbol", "TEXT", "text"),
    Column("resolution", "TEXT", "text"),
    Column("ts", "TEXT", "timestamp with time zone"),  # SQLite: fixed-width UTC text
    Column("open", "REAL", "double precision"),
    Column("high", "REAL", "double precision"),
    Column("low", "REAL", "double precision"),
    Column("close", "REAL", "double precision"),
    Column("volume", "REAL", "double precision"),
    Column("vwap", "REAL", "double precision", nullable=True),
    Column("trades", "INTEGER", "bigint", nullable=True),
    # Columns added in later versions go here, each with default=...
    # Activity bars: the last tick's event time (null for time bars), and a bar written before
    # it reached its threshold (completed in place by a later run).
    Column("end_ts", "TEXT", "timestamp with time zone", nullable=True, default="NULL"),
    Column("incomplete", "INTEGER", "boolean", default="false"),  # SQLite reads false as 0
    # How many times late ticks revised the bar (--allowed-lateness); 0 for a bar written once.
    Column("revision", "INTEGER", "integer", default="0"),
)

if tuple(c.name for c in COLUMNS) != TABLE_COLUMNS + OPTIONAL_COLUMNS:  # pragma: no cover
    raise RuntimeError("sinks.schema.COLUMNS and defaults.TABLE_COLUMNS list different columns")


@dataclass(frozen=True, slots=True)
class BarTable:
    """Where bars go: a table name and, in PostgreSQL, an optional schema (``schema.table``)."""

    name: str = DEFAULT_TABLE
    schema: str | None = None

    @property
    def sql(self) -> str:
        """Return the quoted, qualified name for SQL: ``"bars"`` or ``"market"."bars"``."""
        return _qualify(self.schema, self.name)

    @property
    def checkpoints_sql(self) -> str:
        """Return the table holding this table's checkpoints, beside it (``mdp_checkpoints``
        for ``bars``, so stores written before ``--table`` existed keep theirs)."""
        name = "mdp_checkpoints" if self.name == DEFAULT_TABLE else f"mdp_checkpoints_{self.name}"
        return _qualify(self.schema, name)

    def __str__(self) -> str:
        return self.name if self.schema is None else f"{self.schema}.{self.name}"

    def create_sql(self, dialect: Dialect) -> str:
        """Return CREATE TABLE IF NOT EXISTS for this table, from the column spec."""
        columns = ",\n    ".join(column.definition(dialect) for column in COLUMNS)
        tail = " WITHOUT ROWID" if dialect == "sqlite" else ""
        key = ", ".join(KEY_COLUMNS)
        return (
            f"CREATE TABLE IF NOT EXISTS {self.sql} (\n    {columns},\n"
            f"    PRIMARY KEY ({key})\n){tail}"
        )


@dataclass(frozen=True, slots=True)
class Selection:
    """Bars of one symbol and resolution, window starts in ``[start_ns, end_ns)``, the latest
    ``limit`` of them: a query the store answers from its key, not a read of the whole table."""

    symbol: str
    resolution: str
    start_ns: int | None = None
    end_ns: int | None = None
    limit: int | None = None

    def sql(
        self, columns: str, table: BarTable, mark: str, time: Callable[[int], object]
    ) -> tuple[str, list[object]]:
        """Return the query of ``columns`` and its parameters, latest bar first; ``mark`` is the
        driver's placeholder and ``time`` turns microseconds into the store's time values."""
        where = [f"symbol = {mark}", f"resolution = {mark}"]
        params: list[object] = [self.symbol, self.resolution]
        for ns, condition in ((self.start_ns, ">="), (self.end_ns, "<")):
            if ns is not None:
                where.append(f"ts {condition} {mark}")
                # Stores keep whole microseconds: ts >= ns and ts < ns hold as they do for the
                # next whole microsecond up.
                params.append(time(-(-ns // 1000)))
        sql = f"SELECT {columns} FROM {table.sql} WHERE {' AND '.join(where)} ORDER BY ts DESC"
        if self.limit is not None:
            sql += f" LIMIT {mark}"
            params.append(self.limit)
        return sql, params


def _qualify(schema: str | None, name: str) -> str:
    # Names are checked against _NAME, so quoting cannot be escaped; quoted, they keep their case.
    return f'"{name}"' if schema is None else f'"{schema}"."{name}"'


def parse_table(text: str | None, dialect: Dialect | Literal["memory"]) -> BarTable:
    """Return the table ``--table`` names; raise ``UsageError`` for a name a store cannot take.

    A name is letters, digits and ``_`` (not first a digit), at most ``MAX_NAME_CHARS``;
    PostgreSQL also takes ``schema.table``.
    """
    if text is None:
        return BarTable()
    schema, dot, name = text.rpartition(".")
    if dot and dialect != "postgresql":
        raise UsageError(
            f"bad --table {text!r}: schema.table is for PostgreSQL; a {dialect} store takes a"
            " plain name, e.g. --table bars_es"
        )
    for part in (schema, name) if dot else (name,):
        if not _NAME.fullmatch(part) or len(part) > MAX_NAME_CHARS:
            raise UsageError(
                f"bad --table {text!r}: a name is letters, digits and _ (not first a digit),"
                f" at most {MAX_NAME_CHARS} characters, e.g. bars or market.bars_es"
            )
    return BarTable(name, schema or None)


@dataclass(frozen=True, slots=True)
class FoundColumn:
    """A column of an existing table as the store describes it."""

    sql_type: str
    nullable: bool
    has_default: bool


def check_table(
    table: BarTable,
    found: Mapping[str, FoundColumn],
    unique_keys: Sequence[frozenset[str]],
    *,
    where: str,
    dialect: Dialect,
) -> list[str]:
    """Return ADD COLUMN statements that bring an existing table up to the spec.

    Raise ``SinkRefusedError`` naming the first problem no migration can fix.
    """
    missing = [c.name for c in COLUMNS if c.name not in found and c.default is None]
    migrations = [
        f"ALTER TABLE {table.sql} ADD COLUMN {column.definition(dialect)}"
        for column in COLUMNS
        if column.name not in found and column.default is not None
    ]
    problems = [f"no column {', '.join(missing)}"] if missing else []
    problems += [
        f"column {column.name} is {found[column.name].sql_type or 'untyped'},"
        f" expected {column.sql_type(dialect)}"
        for column in COLUMNS
        if column.name in found
        and not _same_type(found[column.name].sql_type, column.sql_type(dialect), dialect)
    ]
    spec = {column.name for column in COLUMNS}
    problems += [
        f"column {name} is NOT NULL without a default (mdp cannot fill it)"
        for name, have in found.items()
        if name not in spec and not have.nullable and not have.has_default
    ]
    if frozenset(KEY_COLUMNS) not in unique_keys:
        problems.append(f"no primary key or unique index on ({', '.join(KEY_COLUMNS)})")
    if problems:
        raise SinkRefusedError(
            f"table {table} in {where} is not a bars table: {'; '.join(problems)}"
            " (choose another with --table, or drop it)"
        )
    return migrations


def _same_type(have: str, want: str, dialect: Dialect) -> bool:
    if dialect == "postgresql":
        return have.lower() == want
    return _sqlite_affinity(have) == _sqlite_affinity(want)


def _sqlite_affinity(declared: str) -> str:
    """Return the affinity SQLite gives a declared type (its own rules, section 3.1)."""
    text = declared.upper()
    if "INT" in text:
        return "INTEGER"
    if any(word in text for word in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if not text or "BLOB" in text:
        return "BLOB"
    if any(word in text for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"
