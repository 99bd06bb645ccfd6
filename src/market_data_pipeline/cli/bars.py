"""``mdp bars``: show or export the bars a run wrote (table, CSV, Parquet or JSON lines)."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from ..defaults import DEFAULT_SINK, TABLE_COLUMNS
from ..errors import EXIT_BAD_INPUT, PipelineError, UsageError
from ..isotime import iso_time_ns

if TYPE_CHECKING:
    import polars as pl

_TEXT_COLUMNS = ("symbol", "resolution", "ts")
_PRICE_COLUMNS = ("open", "high", "low", "close", "vwap")
_MAX_DECIMALS = 8
TABLE_LIMIT = 20

Format = Literal["table", "csv", "parquet", "json"]


def bars_command(
    sink: Annotated[
        str,
        typer.Option(
            "--sink",
            "-S",
            metavar="URL",
            envvar="MDP_SINK",
            help="Store to read: sqlite:///path.db or postgresql://user@host/db.",
        ),
    ] = DEFAULT_SINK,
    symbol: Annotated[
        str | None,
        typer.Option("--symbol", "-s", metavar="SYMBOL", help="Only this instrument, e.g. ES."),
    ] = None,
    resolution: Annotated[
        str | None,
        typer.Option("--resolution", "-r", metavar="SIZE", help="Only this bar size, e.g. 1m."),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            metavar="ISO_TIME", help="Bars from this window start on, e.g. 2024-01-02T09:30Z."
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(metavar="ISO_TIME", help="Bars that start before this time (exclusive)."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            "-n",
            metavar="N",
            min=1,
            help=f"Only the latest N bars. \\[default: {TABLE_LIMIT} for a table, all otherwise]",
        ),
    ] = None,
    output_format: Annotated[
        Format,
        typer.Option("--format", "-f", help="table on the terminal; csv, parquet or JSON lines."),
    ] = "table",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            help="Write to FILE instead of stdout (parquet needs it).",
        ),
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option("--json", "-j", help="Same as --format json (one JSON object per line)."),
    ] = False,
    complete: Annotated[
        bool,
        typer.Option(
            "--complete",
            help="Leave out activity bars written before reaching their threshold (incomplete).",
        ),
    ] = False,
) -> None:
    """Show or export the bars in a store.

    Examples: mdp bars -s ES -r 1m --start 2024-01-02T09:30Z --end 2024-01-02T16:00Z;
    mdp bars -f parquet -o bars.parquet; mdp bars -f csv | head
    """
    from .output import error_line

    fmt: Format = "json" if json_output else output_format
    try:
        _check_request(sink, fmt, out)
        window = iso_time_ns(start, "--start"), iso_time_ns(end, "--end")
        frame = _select(sink, symbol, resolution, window, limit or _default_limit(fmt), complete)
        _emit(frame, fmt, out)
    except PipelineError as exc:
        error_line(str(exc))
        raise typer.Exit(exc.exit_code or EXIT_BAD_INPUT) from None


def _default_limit(fmt: Format) -> int | None:
    return TABLE_LIMIT if fmt == "table" else None


def _check_request(sink: str, fmt: Format, out: Path | None) -> None:
    """Refuse, before polars loads, what cannot work: a missing database file, Parquet to a tty."""
    from ..sinks.urls import parse_sink_url

    target = parse_sink_url(sink)
    if target.backend == "memory" or target.location == ":memory:":
        raise UsageError(
            f"{sink} holds bars only inside the Python process that wrote them (read them there"
            " with market_data_pipeline.read_bars); mdp bars reads sqlite:///path.db or"
            " postgresql://..."
        )
    sqlite_file = target.backend == "sqlite"
    if sqlite_file and not Path(target.location).is_file():
        raise UsageError(
            f"no database file {target.location!r} (sink {sink}): check --sink; "
            f"mdp run writes {DEFAULT_SINK} in its working directory by default"
        )
    if fmt == "parquet" and out is None:
        raise UsageError("--format parquet writes a file: add --out FILE (e.g. -o bars.parquet)")


def _select(
    sink: str,
    symbol: str | None,
    resolution: str | None,
    window: tuple[int | None, int | None],
    limit: int | None,
    complete: bool = False,
) -> pl.DataFrame:
    import polars as pl

    from ..api import with_datetime
    from ..bars.activity_labels import stored_label
    from ..sinks import read_bars

    frame = read_bars(sink)
    if complete:
        frame = frame.filter(~pl.col("incomplete"))
    if symbol:
        frame = frame.filter(pl.col("symbol") == symbol)
    if resolution:
        frame = frame.filter(pl.col("resolution") == stored_label(resolution))
    if window[0] is not None:
        frame = frame.filter(pl.col("ts_ns") >= window[0])
    if window[1] is not None:
        frame = frame.filter(pl.col("ts_ns") < window[1])
    frame = frame.sort(["ts_ns", "symbol", "resolution"])
    if limit is not None:
        frame = frame.tail(limit)
    return with_datetime(frame)


def _emit(frame: pl.DataFrame, fmt: Format, out: Path | None) -> None:
    if fmt == "table":
        _print_table(frame, out)
    elif fmt == "parquet":
        assert out is not None  # _check_request
        frame.write_parquet(out)
    elif fmt == "csv":
        text = frame.write_csv()
        _write_text(text, out)
    else:
        lines = [
            json.dumps({**row, **{k: _iso(row[k]) for k in ("ts", "end_ts")}}) + "\n"
            for row in frame.iter_rows(named=True)
        ]
        _write_text("".join(lines), out)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _write_text(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")


def _print_table(frame: pl.DataFrame, out: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    rows = list(frame.iter_rows(named=True))
    decimals = {c: _decimals([row[c] for row in rows]) for c in (*_PRICE_COLUMNS, "volume")}
    table = Table(box=None)
    for column in TABLE_COLUMNS:
        table.add_column(column, justify="left" if column in _TEXT_COLUMNS else "right")
    for row in rows:
        cells = (_cell(row[c], decimals.get(c)) for c in TABLE_COLUMNS)
        table.add_row(*(Text(cell) for cell in cells))  # data printed literally
    stream = out.open("w", encoding="utf-8") if out is not None else None
    try:
        wide = stream is None and sys.stdout.isatty()
        console = Console(file=stream, width=None if wide else 160)
        console.print(table if rows else "no bars match")
    finally:
        if stream is not None:
            stream.close()


def _decimals(values: list[object]) -> int:
    """Return the decimals a column needs so that every value shows exactly, the same way."""
    needed = 0
    for value in values:
        if isinstance(value, float):
            text = f"{value:.{_MAX_DECIMALS}f}".rstrip("0")
            needed = max(needed, len(text.split(".")[1]) if "." in text else 0)
    return needed


def _cell(value: object, decimals: int | None) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:,.{decimals or 0}f}"
    return "" if value is None else str(value)
