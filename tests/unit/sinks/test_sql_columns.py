"""The SQL stores' statements come from the one column spec, for whichever table is named."""

from __future__ import annotations

import pytest

from market_data_pipeline.defaults import (
    KEY_COLUMNS,
    OPTIONAL_COLUMNS,
    TABLE_COLUMNS,
    VALUE_COLUMNS,
)
from market_data_pipeline.errors import UsageError
from market_data_pipeline.sinks import postgres, sqlite
from market_data_pipeline.sinks.base import column_list, update_set
from market_data_pipeline.sinks.schema import COLUMNS, BarTable, parse_table


def test_column_list_and_update_set() -> None:
    assert column_list(("open", "high")) == "open, high"
    assert column_list(("open", "high"), "bars.") == "bars.open, bars.high"
    assert update_set(("open", "vwap"), "excluded") == "open = excluded.open, vwap = excluded.vwap"


END_FROM_STAGE = "timestamptz 'epoch' + end_ts_us * interval '1 microsecond'"
END_NS = "(extract(epoch FROM end_ts) * 1000000)::bigint * 1000 AS end_ts_ns"


def _words(sql: str) -> str:
    return " ".join(sql.split())


def test_the_spec_lists_the_table_columns_in_order() -> None:
    assert tuple(column.name for column in COLUMNS) == TABLE_COLUMNS + OPTIONAL_COLUMNS


def test_a_revised_write_upserts_the_revision_too() -> None:
    upsert = _words(sqlite.upsert_sql(BarTable(), (*TABLE_COLUMNS, "revision")))
    assert upsert.count("?") == len(TABLE_COLUMNS) + 1
    assert "revision = excluded.revision WHERE" in upsert
    merge = _words(postgres.merge_sql(BarTable(), revised=True))
    assert "revision = EXCLUDED.revision WHERE" in merge
    assert "revision" not in _words(postgres.merge_sql(BarTable()))


def test_sqlite_statements_name_every_table_column() -> None:
    upsert = _words(sqlite.upsert_sql(BarTable()))
    assert f'INSERT INTO "bars" ({", ".join(TABLE_COLUMNS)}) VALUES (?, ?, ?,' in upsert
    assert upsert.count("?") == len(TABLE_COLUMNS)
    assert f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET open = excluded.open," in upsert
    assert "incomplete = excluded.incomplete WHERE" in upsert
    assert _words(sqlite.select_sql(BarTable("es"))) == (
        f'SELECT {", ".join(TABLE_COLUMNS)} FROM "es" ORDER BY {", ".join(KEY_COLUMNS)}'
    )


def test_postgres_statements_name_every_table_column() -> None:
    table = BarTable("bars_es", "market")
    merge = _words(postgres.merge_sql(table))
    assert merge.startswith(
        f'INSERT INTO "market"."bars_es" AS bars ({", ".join(TABLE_COLUMNS)}) SELECT symbol,'
    )
    staged = ", ".join(VALUE_COLUMNS).replace("end_ts", END_FROM_STAGE)
    assert f"'1 microsecond', {staged} FROM" in merge
    assert "WHERE (bars.open, bars.high," in merge and "IS DISTINCT FROM (EXCLUDED.open," in merge
    assert _words(postgres.insert_sql(table)) == merge.split(" ON CONFLICT")[0]
    read = ", ".join(VALUE_COLUMNS).replace("end_ts", END_NS)
    assert _words(postgres.select_sql(table)).endswith(
        f'{read} FROM "market"."bars_es" ORDER BY {", ".join(KEY_COLUMNS)}'
    )


def test_create_table_comes_from_the_spec() -> None:
    create = _words(BarTable().create_sql("postgresql"))
    assert create.startswith('CREATE TABLE IF NOT EXISTS "bars" ( symbol text NOT NULL,')
    assert "ts timestamp with time zone NOT NULL" in create and "vwap double precision," in create
    assert create.endswith("PRIMARY KEY (symbol, resolution, ts) )")
    assert _words(BarTable().create_sql("sqlite")).endswith(") WITHOUT ROWID")


@pytest.mark.parametrize(
    ("text", "backend", "table"),
    [
        (None, "sqlite", BarTable()),
        ("bars_es", "sqlite", BarTable("bars_es")),
        ("market.bars", "postgresql", BarTable("bars", "market")),
        ("Mixed_Case", "memory", BarTable("Mixed_Case")),
    ],
)
def test_table_names(text: str | None, backend: str, table: BarTable) -> None:
    assert parse_table(text, backend) == table  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "backend", "said"),
    [
        ("market.bars", "sqlite", "schema.table is for PostgreSQL"),
        ('bars"; DROP TABLE x; --', "postgresql", "letters, digits and _"),
        ("1bars", "sqlite", "not first a digit"),
        ("a.b.c", "postgresql", "letters, digits and _"),
        ("x" * 41, "sqlite", "at most 40 characters"),
        ("", "sqlite", "letters, digits"),
    ],
)
def test_table_names_a_store_cannot_take_are_usage_errors(
    text: str, backend: str, said: str
) -> None:
    with pytest.raises(UsageError, match=said):
        parse_table(text, backend)  # type: ignore[arg-type]


def test_a_table_without_the_later_columns_reads_their_defaults() -> None:
    missing = frozenset({"end_ts", "incomplete"})
    assert "trades, NULL AS end_ts, false AS incomplete FROM" in sqlite.select_sql(
        BarTable(), missing
    )
    read = _words(postgres.select_sql(BarTable(), missing))
    assert "(extract(epoch FROM NULL::timestamp with time zone) * 1000000)" in read
    assert "AS end_ts_ns, false::boolean AS incomplete FROM" in read


def test_later_columns_carry_defaults_for_tables_made_before_them() -> None:
    create = _words(BarTable().create_sql("postgresql"))
    assert "end_ts timestamp with time zone DEFAULT NULL," in create
    assert "incomplete boolean NOT NULL DEFAULT false," in create
    assert "incomplete INTEGER NOT NULL DEFAULT false," in _words(BarTable().create_sql("sqlite"))
