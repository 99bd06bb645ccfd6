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

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import polars as pl

from .. import frames
from ..defaults import ADDED_COLUMNS, KEY_COLUMNS, TABLE_COLUMNS, VALUE_COLUMNS
from ..errors import (
    SinkError,
    SinkRefusedError,
    SinkTransactionLostError,
    SinkUnavailableError,
    UsageError,
)
from ..extras import missing_extra
from .base import BarSink, column_list, update_set
from .urls import redact_url, scrub

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_S = 5
STAGE_TABLE = "mdp_bars_stage"
KEY = frames.BAR_KEY

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bars (
    symbol     text             NOT NULL,
    resolution text             NOT NULL,
    ts         timestamptz      NOT NULL,
    open       double precision NOT NULL,
    high       double precision NOT NULL,
    low        double precision NOT NULL,
    close      double precision NOT NULL,
    volume     double precision NOT NULL,
    vwap       double precision,
    trades     bigint,
    end_ts     timestamptz,
    incomplete boolean          NOT NULL DEFAULT false,
    PRIMARY KEY (symbol, resolution, ts)
)
"""
# Tables made before these columns existed get them on open.
_ADD_COLUMNS = """
ALTER TABLE bars ADD COLUMN IF NOT EXISTS end_ts timestamptz,
    ADD COLUMN IF NOT EXISTS incomplete boolean NOT NULL DEFAULT false
"""

_STAGED_END = "timestamptz 'epoch' + end_ts_us * interval '1 microsecond'"
_STAGE = f"""
CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} (
    symbol text, resolution text, ts_us bigint, open double precision, high double precision,
    low double precision, close double precision, volume double precision,
    vwap double precision, trades bigint, end_ts_us bigint, incomplete boolean
)
"""

_MERGE = f"""
INSERT INTO bars ({column_list(TABLE_COLUMNS)})
SELECT symbol, resolution, timestamptz 'epoch' + ts_us * interval '1 microsecond',
       {column_list(VALUE_COLUMNS).replace("end_ts", _STAGED_END)}
FROM {STAGE_TABLE}
ON CONFLICT ({column_list(KEY_COLUMNS)}) DO UPDATE SET
    {update_set(VALUE_COLUMNS, "EXCLUDED")}
WHERE ({column_list(VALUE_COLUMNS, "bars.")})
    IS DISTINCT FROM ({column_list(VALUE_COLUMNS, "EXCLUDED.")})
"""

_CHECKPOINT_SCHEMA = """
CREATE TABLE IF NOT EXISTS mdp_checkpoints (
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL,
    open_state bytea       NOT NULL,
    watermarks bytea       NOT NULL,
    layout     text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
)
"""

_SAVE_CHECKPOINT = """
INSERT INTO mdp_checkpoints (name, position, open_state, watermarks, layout)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position,
    open_state = EXCLUDED.open_state, watermarks = EXCLUDED.watermarks,
    layout = EXCLUDED.layout, updated_at = now()
"""

_LOAD_CHECKPOINT = """
SELECT name, position, open_state, watermarks, layout FROM mdp_checkpoints WHERE name = %s
"""

# An unchanged bar is not rewritten (no dead tuple, no WAL), so replaying a file again is cheap.
# New bars take a plain INSERT: ON CONFLICT's speculative insertion costs about twice as much per
# row. Only a batch that hits an existing key (a replay run again) is redone as an upsert.
_INSERT_NEW = _MERGE.split("ON CONFLICT")[0]
UPSERT_STREAK = 16  # after a conflict, upsert this many batches before trying plain inserts again
DEFAULT_CONNECTIONS = 2
PARALLEL_MIN_ROWS = 5_000  # smaller writes are not worth splitting

_END_NS = "(extract(epoch FROM end_ts) * 1000000)::bigint * 1000 AS end_ts_ns"
_SELECT = f"""
SELECT symbol, resolution, (extract(epoch FROM ts) * 1000000)::bigint * 1000 AS ts_ns,
       {column_list(VALUE_COLUMNS).replace("end_ts", _END_NS)}
FROM bars ORDER BY {column_list(KEY_COLUMNS)}
"""


def load_driver() -> Any:
    """Import psycopg, or raise ``UsageError`` naming the extra that provides it."""
    try:
        import psycopg
    except ImportError:
        raise UsageError(missing_extra("psycopg", "a PostgreSQL sink")) from None
    return psycopg


# Connection failures that no retry can fix: bad parameters, a missing database or role, a
# refused login. libpq reports them only as text (no SQLSTATE reaches the client on connect).
_FINAL_CONNECT = (
    "connection is bad",  # libpq rejected the parameters before connecting
    "does not exist",  # database or role
    "authentication failed",
    "no password supplied",
    "no pg_hba.conf entry",
    "does not support ssl",
    "servname not supported",  # the port is not a number (e.g. an unencoded "/" in a password)
)


# Refusals no retry fixes: a read-only transaction (a standby, default_transaction_read_only) and
# a missing privilege.
_REFUSED_SQLSTATES = {"25006", "42501"}


@contextmanager
def pg_errors(url: str, action: str) -> Iterator[None]:
    """Translate psycopg errors raised inside the block into pipeline errors (no password shown).

    On connect, a refused URL or login is a ``UsageError`` (retrying cannot help), anything else
    ``SinkUnavailableError``; later failures are ``SinkError``.
    """
    psycopg = load_driver()
    try:
        yield
    except psycopg.Error as exc:
        where = redact_url(url)
        detail = scrub(str(exc), url)
        if action == "connect" and _is_final(exc, psycopg):
            raise UsageError(f"cannot use PostgreSQL sink {where}: {detail}") from None
        if action == "connect" and isinstance(exc, psycopg.OperationalError):
            raise SinkUnavailableError(f"cannot connect to {where}: {detail}") from None
        if getattr(exc, "sqlstate", None) in _REFUSED_SQLSTATES:
            raise SinkRefusedError(f"PostgreSQL {action} refused on {where}: {detail}") from None
        raise SinkError(f"PostgreSQL {action} failed on {where}: {detail}") from None


def _is_final(exc: Exception, psycopg: Any) -> bool:
    if isinstance(exc, psycopg.ProgrammingError | psycopg.InterfaceError):
        return True  # libpq could not parse the URI or an option in it
    text = str(exc).lower()
    return any(marker in text for marker in _FINAL_CONNECT)


def encode_csv(bars: pl.DataFrame) -> bytes:
    """Render a bar frame as the staging table's CSV (last row wins for a repeated key)."""
    # In key order the merge walks the primary-key index page by page instead of jumping
    # between symbols (the engine emits bars in time order across all of them).
    unique = bars.unique(subset=KEY, keep="last", maintain_order=True).sort(KEY)
    staged = unique.select(
        "symbol",
        "resolution",
        (pl.col("ts_ns") // 1_000).alias("ts_us"),
        *(
            (pl.col("end_ts_ns") // 1_000).alias("end_ts_us") if name == "end_ts" else name
            for name in VALUE_COLUMNS
        ),
    )
    return staged.write_csv(include_header=False).encode()


class _Writer:
    """One connection with its staging table; every call runs on the thread that owns it."""

    def __init__(self, url: str, *, transactional: bool) -> None:
        self.url = url
        self.transactional = transactional
        self.conn: psycopg.Connection[Any] | None = None
        self.lost = False
        self._upsert_streak = 0

    def open(self) -> None:
        if self.conn is not None or self.lost:
            return
        psycopg = load_driver()
        with pg_errors(self.url, "connect"):
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        with pg_errors(self.url, "schema setup"):
            try:
                conn.execute(_SCHEMA)
                conn.execute(_ADD_COLUMNS)
                if self.transactional:
                    conn.execute(_CHECKPOINT_SCHEMA)
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
        try:
            with pg_errors(self.url, "write"), conn.transaction(), conn.cursor() as cur:
                cur.execute(f"TRUNCATE {STAGE_TABLE}")
                with cur.copy(f"COPY {STAGE_TABLE} FROM STDIN (FORMAT csv)") as copy:
                    copy.write(payload)
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
            cur.execute(_MERGE)
            return
        try:
            with conn.transaction():  # a savepoint: a conflict undoes only this attempt
                cur.execute(_INSERT_NEW)
        except load_driver().errors.UniqueViolation:
            self._upsert_streak = UPSERT_STREAK
            cur.execute(_MERGE)

    def _drop(self, conn: psycopg.Connection[Any]) -> None:
        # A streaming sink reconnects on the next write; a transactional one lost its run.
        self.conn = None
        self.lost = self.transactional
        conn.close()

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
                conn.execute(_SAVE_CHECKPOINT, row)
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
            found: tuple[Any, ...] | None = conn.execute(_LOAD_CHECKPOINT, (name,)).fetchone()
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
        self, url: str, *, transactional: bool = False, connections: int = DEFAULT_CONNECTIONS
    ) -> None:
        load_driver()
        super().__init__(transactional=transactional)
        if connections < 1:
            raise UsageError(f"a PostgreSQL sink needs at least one connection, not {connections}")
        self.url = url
        count = 1 if transactional else connections
        self._writers = [_Writer(url, transactional=transactional) for _ in range(count)]
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


def read_postgres(url: str) -> pl.DataFrame:
    """Read the ``bars`` table as a ``BAR_SCHEMA`` frame (empty if the table does not exist)."""
    psycopg = load_driver()
    with pg_errors(url, "connect"):
        conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    with pg_errors(url, "read"), conn:
        exists = conn.execute("SELECT to_regclass('bars') IS NOT NULL").fetchone()
        rows = conn.execute(_select(conn)).fetchall() if exists and exists[0] else []
    return pl.DataFrame(rows, schema=frames.BAR_SCHEMA, orient="row")


def _select(conn: Any) -> str:
    """The read query; a table made before the added columns reads their defaults."""
    have = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = 'bars' AND table_schema = current_schema()"
    ).fetchall()
    missing = set(ADDED_COLUMNS) - {row[0] for row in have}
    if not missing:
        return _SELECT
    query = _SELECT
    if "end_ts" in missing:
        query = query.replace(_END_NS, "NULL::bigint AS end_ts_ns")
    if "incomplete" in missing:
        query = query.replace("incomplete", "false AS incomplete")
    return query
