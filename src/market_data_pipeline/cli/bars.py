"""``mdp bars``: show the bars a run wrote."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from ..defaults import DEFAULT_SINK, TABLE_COLUMNS
from ..errors import EXIT_BAD_INPUT, PipelineError

_TEXT_COLUMNS = ("symbol", "resolution", "ts")


def bars_command(
    sink: Annotated[
        str,
        typer.Option(
            metavar="URL",
            envvar="MDP_SINK",
            help="Store to read: sqlite:///mdp.db (default) or postgresql://user@host/db.",
        ),
    ] = DEFAULT_SINK,
    symbol: Annotated[str | None, typer.Option(help="Only this instrument, e.g. AAPL.")] = None,
    resolution: Annotated[str | None, typer.Option(help="Only this bar size, e.g. 1m.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Show the latest N bars.")] = 20,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print bars as JSON lines on stdout.")
    ] = False,
) -> None:
    """Show the latest bars in a store.

    Example: mdp bars --symbol AAPL --resolution 1m --limit 5
    """
    import polars as pl

    from ..frames import ns_to_datetime
    from ..sinks import read_bars
    from .output import error_line

    try:
        frame = read_bars(sink)
    except PipelineError as exc:
        error_line(str(exc))
        raise typer.Exit(exc.exit_code if exc.exit_code else EXIT_BAD_INPUT) from None
    if symbol:
        frame = frame.filter(pl.col("symbol") == symbol)
    if resolution:
        frame = frame.filter(pl.col("resolution") == resolution)
    frame = frame.sort("ts_ns").tail(limit)
    rows = [
        {**row, "ts": ns_to_datetime(row.pop("ts_ns")).isoformat()}
        for row in frame.iter_rows(named=True)
    ]
    if json_output:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    _print_table(rows)


def _print_table(rows: list[dict[str, object]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None)
    for column in TABLE_COLUMNS:
        table.add_column(column, justify="left" if column in _TEXT_COLUMNS else "right")
    for row in rows:
        table.add_row(*(Text(_cell(row[c])) for c in TABLE_COLUMNS))  # data printed literally
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table if rows else "no bars")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    return "" if value is None else str(value)
