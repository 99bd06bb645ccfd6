"""The SQL stores' column lists come from the one list of table columns."""

from __future__ import annotations

from market_data_pipeline.defaults import KEY_COLUMNS, TABLE_COLUMNS, VALUE_COLUMNS
from market_data_pipeline.sinks import postgres, sqlite
from market_data_pipeline.sinks.base import column_list, update_set


def test_column_list_and_update_set() -> None:
    assert column_list(("open", "high")) == "open, high"
    assert column_list(("open", "high"), "bars.") == "bars.open, bars.high"
    assert update_set(("open", "vwap"), "excluded") == "open = excluded.open, vwap = excluded.vwap"


def _words(sql: str) -> str:
    return " ".join(sql.split())


def test_sqlite_statements_name_every_table_column() -> None:
    upsert = _words(sqlite._UPSERT)
    assert f"INSERT INTO bars ({', '.join(TABLE_COLUMNS)}) VALUES (?, ?, ?," in upsert
    assert upsert.count("?") == len(TABLE_COLUMNS)
    assert f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET open = excluded.open," in upsert
    assert "incomplete = excluded.incomplete WHERE" in upsert
    assert _words(sqlite._SELECT) == (
        f"SELECT {', '.join(TABLE_COLUMNS)} FROM bars ORDER BY {', '.join(KEY_COLUMNS)}"
    )


def test_postgres_statements_name_every_table_column() -> None:
    merge = _words(postgres._MERGE)
    assert merge.startswith(f"INSERT INTO bars ({', '.join(TABLE_COLUMNS)}) SELECT symbol,")
    staged = ", ".join(VALUE_COLUMNS).replace("end_ts", postgres._STAGED_END)
    assert f"'1 microsecond', {staged} FROM" in merge
    assert "WHERE (bars.open, bars.high," in merge and "IS DISTINCT FROM (EXCLUDED.open," in merge
    assert _words(postgres._INSERT_NEW) == merge.split(" ON CONFLICT")[0]
    read = ", ".join(VALUE_COLUMNS).replace("end_ts", postgres._END_NS)
    assert _words(postgres._SELECT).endswith(f"{read} FROM bars ORDER BY {', '.join(KEY_COLUMNS)}")
