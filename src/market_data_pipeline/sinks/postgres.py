"""PostgreSQL sink (``postgresql://`` or ``postgres://``; psycopg 3 from the ``postgres`` extra).

Each write is one bulk load: the frame is rendered to CSV by polars (vectorised, no Python
object per row), COPY'd into a session-private staging table, and moved into ``bars`` with one
``INSERT ... SELECT`` (or ``... ON CONFLICT DO UPDATE`` when a key already exists).
Timestamps cross the wire as integer microseconds and become ``timestamptz`` in SQL, which is
exact. Keys repeated inside one batch keep their last row (ON CONFLICT cannot touch one row
twice in a statement).

Streaming sinks commit every write; a transactional sink holds one transaction for the whole run
and gives each write a savepoint, so a failed write can be retried without losing earlier ones.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import polars as pl

from .. import frames
from ..defaults import KEY_COLUMNS, TABLE_COLUMNS, VALUE_COLUMNS
from ..errors import (
    SinkError,
    SinkRefusedError,
    SinkSetupError,
    SinkTransactionLostError,
    UsageError,
)
from ..extras import missing_extra
from ..urls import redact_url
from .base import BarSink, column_list, update_set
from .failures import pg_errors
from .schema import COLUMNS, BarTable, Column, FoundColumn, Selection, check_table

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_S = 5
STAGE_TABLE = "mdp_bars_stage"
KEY = frames.BAR_KEY
_ARRIVAL = "_arrival"  # a bar's row number in a write, to keep the last of a repeated key
# Serialises table creation and migration between workers starting together: concurrent
# CREATE TABLE IF NOT EXISTS can collide in the catalog.
SETUP_LOCK = 0x6D6470  # "mdp"

REVISION = "revision"  # written by runs with allowed lateness only (defaults.OPTIONAL_COLUMNS)
_LATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    symbol text NOT NULL, ts_ns bigint NOT NULL, price double precision, size double precision,
    reason text NOT NULL, resolutions text NOT NULL, window_ns bigint, window_end_ns bigint,
    watermark_ns bigint
)
"""
# Time columns cross the wire as integer microseconds (exact) and become timestamptz in SQL.
_TIMES = frozenset(c.name for c in COLUMNS if c.postgresql == "timestamp with time zone")


def _staged(name: str) -> str:
    """Return the staging table's column for table column ``name``."""
    return f"{name}_us" if name in _TIMES else name


def _from_stage(name: str) -> str:
    """Return the expression giving table column ``name`` from the staging table."""
    return f"timestamptz 'epoch' + {name}_us * interval '1 microsecond'" if name in _TIMES else name


# The staging table: the bars table's columns, with times as integer microseconds.
_STAGED_TYPES = (
    f"{_staged(c.name)} {'bigint' if c.name in _TIMES else c.postgresql}" for c in COLUMNS
)
_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} (
    {", ".join(_STAGED_TYPES)}
)
"""
_STAGE_COLUMNS = column_list([_staged(name) for name in TABLE_COLUMNS])
_TABLE_SPEC = tuple(column for column in COLUMNS if column.name in TABLE_COLUMNS)

_CHECKPOINT_SCHEMA = """
CREATE TABLE IF NOT EXISTS {checkpoints} (
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL,
    open_state bytea       NOT NULL,
    watermarks bytea       NOT NULL,
    layout     text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""

_SAVE_CHECKPOINT = """
INSERT INTO {checkpoints} (name, position, open_state, watermarks, layout)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position,
    open_state = EXCLUDED.open_state, watermarks = EXCLUDED.watermarks,
    layout = EXCLUDED.layout, updated_at = now()
"""

_LOAD_CHECKPOINT = """
SELECT name, position, open_state, watermarks, layout FROM {checkpoints} WHERE name = %s
"""

# What the store says about an existing table: its columns, and the column sets of its unique
# indexes (the primary key among them).
_COLUMNS_OF = """
SELECT attname, format_type(atttypid, atttypmod), NOT attnotnull, atthasdef
FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped
"""
_UNIQUE_KEYS_OF = """
SELECT array_agg(a.attname::text) FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
WHERE i.indrelid = %s::regclass AND i.indisunique AND i.indpred IS NULL GROUP BY i.indexrelid
"""
# Privileges a write needs: ON CONFLICT ... DO UPDATE reads the row it updates.
_PRIVILEGES = ("SELECT", "INSERT", "UPDATE")

UPSERT_STREAK = 16  # after a conflict, upsert this many batches before trying plain inserts again
DEFAULT_CONNECTIONS = 2
PARALLEL_MIN_ROWS = 5_000  # smaller writes are not worth splitting


@cache
def merge_sql(table: BarTable, revised: bool = False) -> str:
    """Return the statement moving the staging table into ``table`` (an upsert); ``revised``
    writes the ``revision`` column too."""
    values = (*VALUE_COLUMNS, REVISION) if revised else VALUE_COLUMNS
    return f"""
INSERT INTO {table.sql} AS bars ({column_list((*KEY_COLUMNS, *values))})
SELECT {column_list([_from_stage(name) for name in (*KEY_COLUMNS, *values)])}
FROM {STAGE_TABLE}
ON CONFLICT ({column_list(KEY_COLUMNS)}) DO UPDATE SET
    {update_set(values, "EXCLUDED")}
WHERE ({column_list(values, "bars.")})
    IS DISTINCT FROM ({column_list(values, "EXCLUDED.")})
"""


@cache
def insert_sql(table: BarTable) -> str:
    """Return the plain insert of the staging table into ``table``.

    An unchanged bar is not rewritten (no dead tuple, no WAL), so replaying a file again is
    cheap. New bars take this plain INSERT: ON CONFLICT's speculative insertion costs about
    twice as much per row. Only a batch that hits an existing key (a replay run again) is redone
    as an upsert.
    """
    return merge_sql(table).split("ON CONFLICT")[0]


def select_sql(table: BarTable, missing: frozenset[str] = frozenset()) -> str:
    """Return the query reading every row of ``table`` as a ``BAR_SCHEMA`` frame, in key order;
    ``missing`` later columns (a table no write has brought up to the spec yet) read as their
    defaults."""
    return f"""
SELECT {column_list([_read(column, missing) for column in _TABLE_SPEC])}
FROM {table.sql} ORDER BY {column_list(KEY_COLUMNS)}
"""


def _read(column: Column, missing: frozenset[str]) -> str:
    """Return the select expression reading ``column`` (times as integer nanoseconds)."""
    name = column.name
    value = f"{column.default}::{column.postgresql}" if name in missing else name
    if name in _TIMES:
        return f"(extract(epoch FROM {value}) * 1000000)::bigint * 1000 AS {name}_ns"
    return f"{value} AS {name}" if name in missing else name


def load_driver() -> Any:
    """Import psycopg, or raise ``UsageError`` naming the extra that provides it."""
    try:
        import psycopg
    except ImportError:
        raise UsageError(missing_extra("psycopg", "a PostgreSQL sink")) from None
    return psycopg


def connect(url: str) -> psycopg.Connection[Any]:
    """Open an autocommit connection; failures are translated (``failures.pg_errors``)."""
    driver = load_driver()
    with pg_errors(url, "connect"):
        conn: psycopg.Connection[Any] = driver.connect(
            url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
        )
    return conn


def table_exists(conn: psycopg.Connection[Any], table: BarTable) -> bool:
    """Return True when ``table`` exists (an unqualified name is looked up on search_path)."""
    found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table.sql,)).fetchone()
    return bool(found and found[0])


def prepare_table(conn: psycopg.Connection[Any], table: BarTable, where: str) -> None:
    """Create ``table`` from the spec, or check the existing one and add later columns; then
    check that this session may write it."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SETUP_LOCK,))
        if not table_exists(conn, table):
            conn.execute(table.create_sql("postgresql"))
        else:
            _migrate(conn, table, where)
    _check_writable(conn, table, where)


def _migrate(conn: psycopg.Connection[Any], table: BarTable, where: str) -> None:
    found = {
        str(name): FoundColumn(str(sql_type), nullable=bool(null), has_default=bool(default))
        for name, sql_type, null, default in conn.execute(_COLUMNS_OF, (table.sql,))
    }
    keys = [frozenset(row[0]) for row in conn.execute(_UNIQUE_KEYS_OF, (table.sql,))]
    for statement in check_table(table, found, keys, where=where, dialect="postgresql"):
        conn.execute(statement)


def _check_writable(conn: psycopg.Connection[Any], table: BarTable, where: str) -> None:
    read_only = conn.execute("SELECT current_setting('transaction_read_only')").fetchone()
    if read_only and read_only[0] == "on":
        raise SinkRefusedError(
            f"{where} is read-only (a standby, or default_transaction_read_only): cannot write"
            f" table {table}"
        )
    for privilege in _PRIVILEGES:
        allowed = conn.execute(
            "SELECT has_table_privilege(%s, %s)", (table.sql, privilege)
        ).fetchone()
        if not (allowed and allowed[0]):
            raise SinkRefusedError(
                f"{where}: this login may not {privilege} table {table} (GRANT it, or choose"
                " another with --table)"
            )


def encode_csv(bars: pl.DataFrame) -> bytes:
    """Render a bar frame as the staging table's CSV (last row wins for a repeated key)."""
    # In key order the merge walks the primary-key index page by page instead of jumping
    # between symbols (the engine emits bars in time order across all of them). The arrival
    # number as the last sort key puts a repeated key's rows side by side in arrival order, so
    # the last of each run is kept: a comparison with the next row, cheaper than a unique()
    # before the sort. (A stable sort does the same, a quarter slower with thousands of symbols.)
    ordered = bars.with_row_index(_ARRIVAL).sort([*KEY, _ARRIVAL]).drop(_ARRIVAL)
    repeated = pl.all_horizontal(pl.col(name).eq_missing(pl.col(name).shift(-1)) for name in KEY)
    unique = ordered.filter(~repeated) if ordered.select(repeated.any()).item() else ordered
    values = (*VALUE_COLUMNS, REVISION) if REVISION in bars.columns else VALUE_COLUMNS
    staged = unique.select(
        (pl.col(f"{name}_ns") // 1_000).alias(_staged(name)) if name in _TIMES else pl.col(name)
        for name in (*KEY_COLUMNS, *values)
    )
    return staged.write_csv(include_header=False).encode()


class _Writer:
    """One connection with its staging table; every call runs on the thread that owns it."""

    def __init__(self, url: str, *, transactional: bool, table: BarTable) -> None:
        self.url = url
        self.transactional = transactional
        self.table = table
        self.conn: psycopg.Connection[Any] | None = None
        self.lost = False
        self._upsert_streak = 0
        self._checkpoints = table.checkpoints_sql

    def open(self) -> None:
        if self.conn is not None or self.lost:
            return
        conn = connect(self.url)
        with pg_errors(self.url, "schema setup"):
            try:
                prepare_table(conn, self.table, redact_url(self.url))
                if self.transactional:
                    conn.execute(_CHECKPOINT_SCHEMA.format(checkpoints=self._checkpoints))
                conn.execute(_STAGE)
                if self.transactional:
                    # Writes then run inside this transaction, each under its own savepoint.
                    conn.execute("BEGIN")
            except BaseException:
                conn.close()
                raise
        self.conn = conn

    def write(self, bars: pl.DataFrame) -> None:
        self.open()
        conn = self.conn
        if conn is None or self.lost:
            raise SinkTransactionLostError(
                f"the run transaction on {redact_url(self.url)} was lost with its connection"
            )
        payload = encode_csv(bars)
        revised = REVISION in bars.columns
        columns = f"{_STAGE_COLUMNS}, {REVISION}" if revised else _STAGE_COLUMNS
        try:
            with pg_errors(self.url, "write"), conn.transaction(), conn.cursor() as cur:
                cur.execute(f"TRUNCATE {STAGE_TABLE}")
                with cur.copy(f"COPY {STAGE_TABLE} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                    copy.write(payload)
                if revised:
                    # A revision rewrites a bar: always an upsert.
                    cur.execute(merge_sql(self.table, revised=True))
                else:
                    self._merge(conn, cur)
        except SinkError as exc:
            if (conn.closed or conn.broken) and self.transactional:
                raise SinkTransactionLostError(
                    f"the run transaction on {redact_url(self.url)} was lost with its "
                    f"connection: {exc}"
                ) from None
            raise
        finally:
            if conn.closed or conn.broken:
                self._drop(conn)

    def _merge(self, conn: psycopg.Connection[Any], cur: psycopg.Cursor[Any]) -> None:
        if self._upsert_streak:
            self._upsert_streak -= 1
            cur.execute(merge_sql(self.table))
            return
        try:
            with conn.transaction():  # a savepoint: a conflict undoes only this attempt
                cur.execute(insert_sql(self.table))
        except load_driver().errors.UniqueViolation:
            self._upsert_streak = UPSERT_STREAK
            cur.execute(merge_sql(self.table))

    def _drop(self, conn: psycopg.Connection[Any]) -> None:
        # A streaming sink reconnects on the next write; a transactional one lost its run.
        self.conn = None
        self.lost = self.transactional
        conn.close()

    def write_late(self, table: str, rows: pl.DataFrame) -> None:
        # On the run's connection: in a transactional run the rows commit with the bars.
        self.open()
        conn = self.conn
        if conn is None or self.lost:
            raise SinkTransactionLostError(
                f"the run transaction on {redact_url(self.url)} was lost with its connection"
            )
        names = ", ".join(rows.columns)
        insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join(['%s'] * rows.width)})"
        try:
            with pg_errors(self.url, "late tick write"), conn.transaction(), conn.cursor() as cur:
                cur.execute(_LATE_SCHEMA.format(table=table))
                cur.executemany(insert, rows.rows())
        finally:
            if conn.closed or conn.broken:
                self._drop(conn)

    def checkpoint(self, row: tuple[Any, ...]) -> None:
        # The run transaction holds every bar written since the last checkpoint: the checkpoint
        # row commits with them, and a new transaction starts for the next interval.
        self.open()
        conn = self.conn
        if conn is None or self.lost or not self.transactional:
            raise SinkTransactionLostError(
                f"no run transaction on {redact_url(self.url)} to checkpoint"
            )
        try:
            with pg_errors(self.url, "checkpoint"):
                conn.execute(_SAVE_CHECKPOINT.format(checkpoints=self._checkpoints), row)
                conn.execute("COMMIT")
                conn.execute("BEGIN")
        finally:
            if conn.closed or conn.broken:
                self._drop(conn)

    def load_checkpoint(self, name: str) -> tuple[Any, ...] | None:
        self.open()
        conn = self.conn
        assert conn is not None
        with pg_errors(self.url, "checkpoint read"):
            load = _LOAD_CHECKPOINT.format(checkpoints=self._checkpoints)
            found: tuple[Any, ...] | None = conn.execute(load, (name,)).fetchone()
        return found

    def finish(self, commit: bool) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            if commit and self.lost:
                raise SinkTransactionLostError(
                    f"the run transaction on {redact_url(self.url)} was lost; nothing was committed"
                )
            return
        with pg_errors(self.url, "commit" if commit else "rollback"):
            try:
                if self.transactional:
                    conn.execute("COMMIT" if commit else "ROLLBACK")
            finally:
                conn.close()


class PostgresSink(BarSink):
    """Upsert bars into PostgreSQL with COPY into a staging table and one merge statement.

    A streaming sink spreads a large write over ``connections`` connections (split by symbol, so
    a key never goes to two of them): PostgreSQL inserts into an indexed table on one core per
    connection, and this is what lifts bulk writes past one core's rate. The parts commit
    separately; if one fails the whole write fails and is retried, which upserts make safe. A
    transactional sink uses one connection, so its run commits or rolls back as one.
    """

    scheme = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        transactional: bool = False,
        connections: int = DEFAULT_CONNECTIONS,
        table: BarTable | None = None,
    ) -> None:
        load_driver()
        super().__init__(transactional=transactional)
        if connections < 1:
            raise UsageError(f"a PostgreSQL sink needs at least one connection, not {connections}")
        self.url = url
        self.table = table or BarTable()
        count = 1 if transactional else connections
        self._writers = [
            _Writer(url, transactional=transactional, table=self.table) for _ in range(count)
        ]
        self._pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix="pg-writer")

    def describe(self) -> str:
        """Return the database URL with any password masked."""
        return redact_url(self.url)

    def _open_sync(self) -> None:
        # One after the other: concurrent CREATE TABLE IF NOT EXISTS can collide in the catalog.
        for writer in self._writers:
            writer.open()

    def _upsert_sync(self, bars: pl.DataFrame) -> None:
        if len(self._writers) == 1 or bars.height < PARALLEL_MIN_ROWS:
            self._writers[0].write(bars)
            return
        parts = bars.with_columns(
            (pl.col("symbol").hash() % len(self._writers)).alias("_part")
        ).partition_by("_part", include_key=False, as_dict=True)
        jobs = [
            self._pool.submit(self._writers[int(key[0])].write, part) for key, part in parts.items()
        ]
        _first_error([job.exception() for job in jobs])

    def _write_late_sync(self, table: str, rows: pl.DataFrame) -> None:
        self._writers[0].write_late(table, rows)

    def _checkpoint_sync(self, row: tuple[Any, ...]) -> None:
        self._writers[0].checkpoint(row)

    def _load_checkpoint_sync(self, name: str) -> tuple[Any, ...] | None:
        return self._writers[0].load_checkpoint(name)

    def _finish_sync(self, commit: bool) -> None:
        try:
            self._on_each(lambda writer: writer.finish(commit))
        finally:
            self._pool.shutdown(wait=True)

    def _on_each(self, action: Callable[[_Writer], None]) -> None:
        jobs = [self._pool.submit(action, writer) for writer in self._writers]
        _first_error([job.exception() for job in jobs])


def _first_error(errors: list[BaseException | None]) -> None:
    for error in errors:
        if error is not None:
            raise error


def read_postgres(
    url: str, table: BarTable | None = None, selection: Selection | None = None
) -> pl.DataFrame:
    """Read a bars table (or the ``selection`` of it) as a ``BAR_SCHEMA`` frame;
    ``SinkSetupError`` if there is none."""
    table = table or BarTable()
    conn = connect(url)
    with pg_errors(url, "read"), conn:
        if not table_exists(conn, table):
            raise SinkSetupError(f"no table {table} in {redact_url(url)}")
        missing = _missing_columns(conn, table)
        if selection is None:
            rows = conn.execute(select_sql(table, missing)).fetchall()
        else:
            columns = column_list([_read(column, missing) for column in _TABLE_SPEC])
            sql, params = selection.sql(columns, table, "%s", _timestamp)
            rows = conn.execute(sql, params).fetchall()[::-1]
    return pl.DataFrame(rows, schema=frames.BAR_SCHEMA, orient="row")


def _timestamp(ts_us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ts_us)


def _missing_columns(conn: psycopg.Connection[Any], table: BarTable) -> frozenset[str]:
    """Return the later columns (those with a default) that ``table`` does not have yet."""
    have = {str(row[0]) for row in conn.execute(_COLUMNS_OF, (table.sql,))}
    return frozenset(c.name for c in _TABLE_SPEC if c.default is not None and c.name not in have)
