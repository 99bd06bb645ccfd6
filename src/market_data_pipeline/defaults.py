"""Defaults shared by the settings model and light CLI paths (importing this costs nothing)."""

from __future__ import annotations

DEFAULT_SINK = "sqlite:///mdp.db"
# Columns of the `bars` table, in order (users' queries and dashboards depend on these names).
TABLE_COLUMNS = (
    "symbol",
    "resolution",
    "ts",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "vwap",
    "trades",
)
