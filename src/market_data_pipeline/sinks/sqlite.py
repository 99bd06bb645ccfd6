"""SQLite sink: the embedded default store (``sqlite:///mdp.db``).

WAL journal, one transaction per write (executemany upsert), or one transaction per run when
``transactional=True``. Timestamps are stored as fixed-width UTC text,
``2024-01-02T09:30:00.000000Z`` (always six fractional digits and a ``Z``), so text order is
time order and the primary key sorts chronologically. Bar windows start on whole milliseconds,
so microseconds lose nothing. Bars go to table ``bars`` unless another is named (``--table``);
an existing table is checked against the column spec when the sink opens (``schema``).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from .. import frames
from ..defaults import KEY_COLUMNS, TABLE_COLUMNS
from ..errors import SinkSetupError, SinkTransactionLostError, UsageError
from .base import BarSink, column_list, update_set
from .failures import sqlite_errors
from .schema import COLUMNS, BarTable, FoundColumn, Selection, check_table

TS_FORMAT = "%Y-%m-%dT%H:%M:%S%.6fZ"
BUSY_TIMEOUT_MS = 5_000
# Page cache per connection. Bars arrive in time order across every symbol, while the table is
# clustered by (symbol, resolution, ts): with thousands of symbols each batch touches a leaf page
# per symbol, and SQLite's default 2 MiB cache re-reads them on every batch (measured: 1.5x the
# write time at 10,000 symbols). The cache fills only as the table grows, up to this bound.
CACHE_KIB = 131_072

REVISION = "revision"  # written by runs with allowed lateness only (defaults.OPTIONAL_COLUMNS)
_LATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    symbol TEXT NOT NULL, ts_ns INTEGER NOT NULL, price REAL, size REAL, reason TEXT NOT NULL,
    resolutions TEXT NOT NULL, window_ns INTEGER, window_end_ns INTEGER, watermark_ns INTEGER
)
"""


def upsert_sql(table: BarTable, columns: tuple[str, ...] = TABLE_COLUMNS) -> str:
    """Return the upsert of one row of ``columns`` into ``table`` (an unchanged row is not
    rewritten)."""
    values = tuple(name for name in columns if name not in KEY_COLUMNS)
    return f"""
INSERT INTO {table.sql} ({column_list(columns)})
VALUES ({column_list(["?"] * len(columns))})
ON CONFLICT ({column_list(KEY_COLUMNS)}) DO UPDATE SET
    {update_set(values, "excluded")}
WHERE ({column_list(values)})
    IS NOT ({column_list(values, "excluded.")})
"""


def select_sql(table: BarTable, missing: frozenset[str] = frozenset()) -> str:
    """Return the query reading every row of ``table`` in key order; ``missing`` later columns
    (a table no write has brought up to the spec yet) read as their defaults."""
    return f"SELECT {_columns(missing)} FROM {table.sql} ORDER BY {column_list(KEY_COLUMNS)}"


def _columns(missing: frozenset[str]) -> str:
    defaults = {column.name: column.default for column in COLUMNS}
    names = (f"{defaults[name]} AS {name}" if name in missing else name for name in TABLE_COLUMNS)
    return ", ".join(names)


def missing_columns(conn: sqlite3.Connection, table: BarTable) -> frozenset[str]:
    """Return the later columns (those with a default) that ``table`` does not have yet."""
    have = {row[1] for row in conn.execute(f"PRAGMA table_info({table.sql})")}
    return frozenset(
        column.name
        for column in COLUMNS
        if column.default is not None and column.name in TABLE_COLUMNS and column.name not in have
    )


_CHECKPOINT_SCHEMA = """
CREATE TABLE IF NOT EXISTS {checkpoints} (
    name       TEXT    PRIMARY KEY,
    position   INTEGER NOT NULL,
    open_state BLOB    NOT NULL,
    watermarks BLOB    NOT NULL,
    layout     TEXT    NOT NULL,
    updated_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)
"""

_SAVE_CHECKPOINT = """
INSERT INTO {checkpoints} (name, position, open_state, watermarks, layout) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET position = excluded.position, open_state = excluded.open_state,
    watermarks = excluded.watermarks, layout = excluded.layout,
    updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
"""

_LOAD_CHECKPOINT = """
SELECT name, position, open_state, watermarks, layout FROM {checkpoints} WHERE name = ?
"""


def existing_table(conn: sqlite3.Connection, table: BarTable) -> bool:
    """Return True when ``table`` exists in the database."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table.name,)
    ).fetchone()
    return found is not None


def prepare_table(conn: sqlite3.Connection, table: BarTable, where: str) -> None:
    """Create ``table`` from the spec, or check the existing one and add later columns."""
    if not existing_table(conn, table):
        conn.execute(table.create_sql("sqlite"))
        return
    found = {
        name: FoundColumn(
            declared,
            nullable=not notnull and not pk,
            # An INTEGER PRIMARY KEY is the rowid: SQLite fills it.
            has_default=default is not None or (pk == 1 and declared.upper() == "INTEGER"),
        )
        for _, name, declared, notnull, default, pk in conn.execute(
            f"PRAGMA table_info({table.sql})"
        )
    }
    keys = [_primary_key(conn, table)]
    for _, index, unique, *_ in conn.execute(f"PRAGMA index_list({table.sql})"):
        if unique:
            info = conn.execute(f'PRAGMA index_info("{index}")').fetchall()
            keys.append(frozenset(str(row[2]) for row in info))
    for statement in check_table(table, found, keys, where=where, dialect="sqlite"):
        conn.execute(statement)


def _primary_key(conn: sqlite3.Connection, table: BarTable) -> frozenset[str]:
    rows = conn.execute(f"PRAGMA table_info({table.sql})").fetchall()
    return frozenset(str(row[1]) for row in rows if row[5])


def ts_text(column: str = "ts_ns") -> pl.Expr:
    """Return the expression that renders ``column`` (``ts_ns``, ``end_ts_ns``) in the stored
    text format."""
    return pl.col(column).cast(pl.Datetime("ns", "UTC")).dt.strftime(TS_FORMAT).alias("ts")


def table_rows(
    bars: pl.DataFrame, columns: tuple[str, ...] = TABLE_COLUMNS
) -> list[tuple[object, ...]]:
    """Return ``bars`` as table rows in primary-key order.

    In key order consecutive inserts land on the same B-tree pages: about 2-3x fewer page
    visits than the engine's time order when a batch spans many symbols.
    """
    stored = {
        "ts": _stamp_text(bars, "ts_ns").alias("ts"),
        "end_ts": _stamp_text(bars, "end_ts_ns").alias("end_ts"),
        "incomplete": pl.col("incomplete").cast(pl.Int64),
    }
    table = bars.select(stored.get(name, pl.col(name)) for name in columns)
    table = table.sort(KEY_COLUMNS, maintain_order=True)  # a repeated key keeps its last row last
    # Column lists zipped into tuples: cheaper than polars' row iterator per row.
    return list(zip(*(table.get_column(name).to_list() for name in columns), strict=True))


def _stamp_text(bars: pl.DataFrame, column: str) -> pl.Expr:
    """Return ``column`` in the stored text format, each distinct time formatted once: a batch's
    bars share a few window times across every symbol, and formatting is the costly part."""
    times = bars.get_column(column).unique()
    text = times.cast(pl.Datetime("ns", "UTC")).dt.strftime(TS_FORMAT)
    return pl.col(column).replace_strict(times, text, return_dtype=pl.String)


class SqliteSink(BarSink):
    """Upsert bars into a SQLite file (created with its parent directory if missing)."""

    scheme = "sqlite"

    def __init__(
        self, path: str, *, transactional: bool = False, table: BarTable | None = None
    ) -> None:
        super().__init__(transactional=transactional)
        self.path = path
        self.table = table or BarTable()
        self._upsert = upsert_sql(self.table)
        self._upsert_revised = upsert_sql(self.table, (*TABLE_COLUMNS, REVISION))
        self._checkpoints = self.table.checkpoints_sql
        self._conn: sqlite3.Connection | None = None
        self._lost = False

    def describe(self) -> str:
        """Return the database file this sink writes."""
        return f"sqlite:///{self.path}"

    def _open_sync(self) -> None:
        if self._conn is not None:
            return
        if self.path != ":memory:" and Path(self.path).is_dir():
            raise UsageError(f"bad SQLite path {self.path}: it is a directory")
        with sqlite_errors(self.path, "open"):
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: this module issues BEGIN/COMMIT itself.
            conn = sqlite3.connect(self.path, isolation_level=None)
            try:
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("BEGIN IMMEDIATE")
                prepare_table(conn, self.table, f"sqlite:///{self.path}")
                # A write that changes nothing: a read-only file or file system fails here, at
                # start, rather than at the first batch of bars.
                conn.execute(f"DELETE FROM {self.table.sql} WHERE 0")
                conn.execute("COMMIT")
                if self.transactional:
                    conn.execute("BEGIN")
            except BaseException:
                conn.close()
                raise
        self._conn = conn

    def _upsert_sync(self, bars: pl.DataFrame) -> None:
        self._open_sync()
        conn = self._conn
        assert conn is not None
        if self._lost:
            raise SinkTransactionLostError(
                f"the run transaction on {self.path} was rolled back by SQLite"
            )
        revised = REVISION in bars.columns
        rows = table_rows(bars, (*TABLE_COLUMNS, REVISION)) if revised else table_rows(bars)
        with sqlite_errors(self.path, "write"):
            # A savepoint (transactional) or a transaction makes each write all-or-nothing, so a
            # retried batch never lands half.
            conn.execute("SAVEPOINT w" if self.transactional else "BEGIN IMMEDIATE")
            try:
                conn.executemany(self._upsert_revised if revised else self._upsert, rows)
                conn.execute("RELEASE w" if self.transactional else "COMMIT")
            except BaseException:
                self._undo(conn)
                raise

    def _undo(self, conn: sqlite3.Connection) -> None:
        # Some errors (disk full, I/O) make SQLite roll back the whole transaction itself; in a
        # transactional run that loses every earlier write, so the sink refuses to commit later.
        if not conn.in_transaction:
            self._lost = self.transactional
            return
        try:
            if self.transactional:
                conn.execute("ROLLBACK TO w")
                conn.execute("RELEASE w")
            else:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            self._lost = self.transactional

    def _write_late_sync(self, table: str, rows: pl.DataFrame) -> None:
        # On the run's connection: in a transactional run the rows commit with the bars.
        self._open_sync()
        conn = self._conn
        assert conn is not None
        names = column_list(rows.columns)
        insert = f"INSERT INTO {table} ({names}) VALUES ({column_list(['?'] * rows.width)})"
        with sqlite_errors(self.path, "late tick write"):
            conn.execute("SAVEPOINT late" if self.transactional else "BEGIN IMMEDIATE")
            try:
                conn.execute(_LATE_SCHEMA.format(table=table))
                conn.executemany(insert, rows.rows())
                conn.execute("RELEASE late" if self.transactional else "COMMIT")
            except BaseException:
                self._undo_late(conn)
                raise

    def _undo_late(self, conn: sqlite3.Connection) -> None:
        if not conn.in_transaction:
            self._lost = self.transactional
        elif self.transactional:
            conn.execute("ROLLBACK TO late")
            conn.execute("RELEASE late")
        else:
            conn.execute("ROLLBACK")

    def _checkpoint_sync(self, row: tuple[object, ...]) -> None:
        # The run transaction holds every bar written since the last checkpoint: the checkpoint
        # row commits with them, and a new transaction starts for the next interval.
        self._open_sync()
        conn = self._conn
        assert conn is not None
        if self._lost or not self.transactional:
            raise SinkTransactionLostError(f"no run transaction on {self.path} to checkpoint")
        with sqlite_errors(self.path, "checkpoint"):
            conn.execute(_CHECKPOINT_SCHEMA.format(checkpoints=self._checkpoints))
            conn.execute(_SAVE_CHECKPOINT.format(checkpoints=self._checkpoints), row)
            conn.execute("COMMIT")
            conn.execute("BEGIN")

    def _load_checkpoint_sync(self, name: str) -> tuple[object, ...] | None:
        self._open_sync()
        conn = self._conn
        assert conn is not None
        with sqlite_errors(self.path, "checkpoint read"):
            conn.execute(_CHECKPOINT_SCHEMA.format(checkpoints=self._checkpoints))
            load = _LOAD_CHECKPOINT.format(checkpoints=self._checkpoints)
            found: tuple[object, ...] | None = conn.execute(load, (name,)).fetchone()
        return found

    def _finish_sync(self, commit: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with sqlite_errors(self.path, "commit" if commit else "rollback"):
            try:
                if commit and self._lost:
                    raise SinkTransactionLostError(
                        f"the run transaction on {self.path} was rolled back by SQLite; "
                        "nothing was committed"
                    )
                if conn.in_transaction:
                    conn.execute("COMMIT" if commit else "ROLLBACK")
            finally:
                conn.close()


def read_sqlite(
    path: str, table: BarTable | None = None, selection: Selection | None = None
) -> pl.DataFrame:
    """Read a bars table of a SQLite file (or the ``selection`` of it) as a ``BAR_SCHEMA`` frame.

    Raise ``SinkSetupError`` when there is no such file or table, or a row cannot be read.
    """
    table = table or BarTable()
    where = f"sqlite:///{path}"
    if path == ":memory:" or not Path(path).is_file():
        raise SinkSetupError(f"no database file {path!r} ({where})")
    with sqlite_errors(path, "read"):
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            if not existing_table(conn, table):
                raise SinkSetupError(f"no table {table} in {where}")
            missing = missing_columns(conn, table)
            if selection is None:
                rows = conn.execute(select_sql(table, missing)).fetchall()
            else:
                sql, params = selection.sql(_columns(missing), table, "?", _ts_text)
                rows = conn.execute(sql, params).fetchall()[::-1]
        finally:
            conn.close()
    return _bar_frame(rows, table, where)


def _ts_text(ts_us: int) -> str:
    """A time as the table stores it (``TS_FORMAT``): texts in that form sort as times."""
    stamp = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ts_us)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _bar_frame(rows: list[tuple[object, ...]], table: BarTable, where: str) -> pl.DataFrame:
    """Return stored rows as a ``BAR_SCHEMA`` frame; a value of another type is an error."""
    schema = {**frames.BAR_SCHEMA, "ts": pl.String(), "end_ts": pl.String()}
    schema["incomplete"] = pl.Int64()
    try:
        raw = pl.DataFrame(rows, schema={k: schema[k] for k in TABLE_COLUMNS}, orient="row")
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SinkSetupError(
            f"table {table} in {where} holds a value mdp cannot read: {detail}"
        ) from None
    frame = raw.with_columns(
        _ns("ts").alias("ts_ns"), _ns("end_ts").alias("end_ts_ns"), pl.col("incomplete") != 0
    )
    unreadable = {
        "ts": pl.col("ts_ns").is_null(),
        # end_ts is null for time bars: only a text that does not parse is an error.
        "end_ts": pl.col("end_ts_ns").is_null() & pl.col("end_ts").is_not_null(),
    }
    for name, condition in unreadable.items():
        bad = frame.filter(condition)
        if bad.height:
            first = bad.row(0, named=True)
            raise SinkSetupError(
                f"table {table} in {where}: {name} {first[name]!r} ({first['symbol']}"
                f" {first['resolution']}) is not a stored time, expected e.g."
                f" 2024-01-02T09:30:00.000000Z (rows like it: {bad.height})"
            )
    return frame.select(list(frames.BAR_SCHEMA))


def _ns(column: str) -> pl.Expr:
    stamp = pl.col(column).str.to_datetime(TS_FORMAT, time_unit="us", time_zone="UTC", strict=False)
    return stamp.dt.epoch("ns")
