"""Helpers for driving ``mdp`` through its command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from market_data_pipeline.cli.app import app

MINUTE_NS = 60 * 1_000_000_000
T0_NS = 1_704_186_000 * 1_000_000_000  # 2024-01-02T09:00:00Z


class Mdp:
    """Run ``mdp`` in-process and parse its JSON summary."""

    def __init__(self, runner: CliRunner) -> None:
        self.runner = runner

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Any:
        return self.runner.invoke(app, list(args), env=env, catch_exceptions=False)

    def run_json(self, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        result = self("run", *args, "--json", env=env)
        return result.exit_code, json.loads(result.stdout)


@pytest.fixture
def mdp() -> Mdp:
    return Mdp(CliRunner())


def write_trades_csv(path: Path, rows: int, *, symbols: tuple[str, ...] = ("AAA", "BBB")) -> Path:
    """Write ``rows`` trades, one per second per symbol, from 2024-01-02T09:00:00Z."""
    n = rows
    frame = pl.DataFrame(
        {
            "symbol": [symbols[i % len(symbols)] for i in range(n)],
            "ts": [T0_NS // 1_000_000 + (i // len(symbols)) * 1_000 for i in range(n)],
            "price": [100.0 + (i % 37) * 0.25 for i in range(n)],
            "size": [1 + i % 5 for i in range(n)],
        }
    )
    frame.write_csv(path)
    return path
