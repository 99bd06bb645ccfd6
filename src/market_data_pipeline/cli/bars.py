"""``mdp bars``: show or export the bars a run wrote (table, CSV, Parquet or JSON lines)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TextIO

import typer

from ..defaults import DEFAULT_SINK, TABLE_COLUMNS
from ..errors import EXIT_BAD_INPUT, PipelineError, UsageError
from ..isotime import iso_time_ns
from ..settings_spec import BY_KEY
from .options import option_info

if TYPE_CHECKING:
    import polars as pl

_TEXT_COLUMNS = ("symbol", "resolution", "ts")
_PRICE_COLUMNS = ("open", "high", "low", "close", "vwap")
_MAX_DECIMALS = 8
TABLE_LIMIT = 20
MAX_LIMIT = 2**63 - 1  # polars counts rows in 64 bits

Format = Literal["table", "csv", "parquet", "json"]


def bars_command(
    sink: Annotated[str, option_info(BY_KEY["sink"], panel=None, envvar=True)] = DEFAULT_SINK,
    table: Annotated[str | None, option_info(BY_KEY["table"], panel=None, envvar=True)] = None,
    symbol: Annotated[
        str | None,
        typer.Option("--symbol", "-s", metavar="SYMBOL", help="Only this instrument, e.g. ES."),
    ] = None,
    resolution: Annotated[
        str | None,
        typer.Option(
            "--resolution",
            "-r",
            metavar="SIZE",
            help="Only this bar size, however written: 1m, 1min and 60s are the same.",
        ),
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
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="FILE.html",
            help="Write a candlestick chart with volume of one symbol and resolution as one"
            " self-contained HTML file (opens offline).",
        ),
    ] = None,
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
        _check_request(sink, fmt, out, limit)
        label = _label(resolution)
        window = iso_time_ns(start, "--start"), iso_time_ns(end, "--end")
        default = None if plot is not None else _default_limit(fmt)
        frame = _select(sink, table, symbol, label, window, limit or default, complete)
        if plot is not None:
            from ..serve.chart import write_plot

            drawn = write_plot(frame, plot)
            typer.echo(f"wrote {drawn:,} bars to {plot}", err=True)
            return
        _emit(frame, fmt, out)
    except PipelineError as exc:
        error_line(str(exc))
        raise typer.Exit(exc.exit_code or EXIT_BAD_INPUT) from None


def _default_limit(fmt: Format) -> int | None:
    return TABLE_LIMIT if fmt == "table" else None


def _label(resolution: str | None) -> str | None:
    from ..aggregation.resolution import canonical_label

    return None if resolution is None else canonical_label(resolution)


def _check_request(sink: str, fmt: Format, out: Path | None, limit: int | None) -> None:
    """Refuse, before polars loads, what cannot work: a missing database file, Parquet to a tty,
    a limit past any table, an output path that cannot be a file."""
    from ..sinks.urls import parse_sink_url

    if limit is not None and limit > MAX_LIMIT:
        raise UsageError(f"--limit {limit}: at most {MAX_LIMIT:,} bars")
    if out is not None:
        check_out(out)

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


def check_out(out: Path) -> None:
    """Raise ``UsageError`` when ``out`` cannot become a file: a directory, no parent."""
    if out.is_dir():
        raise UsageError(f"--out {out}: is a directory; name a file, e.g. {out / 'bars.csv'}")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: no directory {out.parent}")


def _select(
    sink: str,
    table: str | None,
    symbol: str | None,
    label: str | None,
    window: tuple[int | None, int | None],
    limit: int | None,
    complete: bool = False,
) -> pl.DataFrame:
    import polars as pl

    from ..api import with_datetime
    from ..sinks import read_bars

    frame = read_bars(sink, table=table)
    if complete:
        frame = frame.filter(~pl.col("incomplete"))
    if symbol:
        frame = frame.filter(pl.col("symbol") == symbol)
    if label:
        frame = frame.filter(pl.col("resolution").is_in(_spellings(frame, label)))
    if window[0] is not None:
        frame = frame.filter(pl.col("ts_ns") >= window[0])
    if window[1] is not None:
        frame = frame.filter(pl.col("ts_ns") < window[1])
    frame = frame.sort(["ts_ns", "symbol", "resolution"])
    if limit is not None:
        frame = frame.tail(limit)
    return with_datetime(frame)


def _spellings(frame: pl.DataFrame, label: str) -> list[str]:
    """Return the stored labels that mean ``label``: itself, and any older spelling of it
    (``60m`` beside ``1h``, written before labels were canonical)."""
    from ..aggregation.resolution import canonical_label

    found = []
    for stored in frame.get_column("resolution").unique().to_list():
        try:
            if canonical_label(stored) == label:
                found.append(stored)
        except UsageError:
            continue  # a label this version cannot read is nobody's spelling of this one
    return found


def _emit(frame: pl.DataFrame, fmt: Format, out: Path | None) -> None:
    if fmt == "table":
        _print_table(frame, out)
    elif fmt == "parquet":
        assert out is not None  # _check_request
        _write_out(out, lambda path: frame.write_parquet(path))
    elif fmt == "csv":
        _write_text(frame.write_csv(), out)
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
        _write_out(out, lambda path: path.write_text(text, encoding="utf-8"))


def _write_out(out: Path, write: Callable[[Path], object]) -> None:
    """Write ``out`` whole or not at all: into a file beside it, then renamed over it.

    A device or pipe (``/dev/stdout``) is written directly. Raise ``UsageError`` naming the
    file when the system refuses it.
    """
    direct = out.exists() and not out.is_file()
    target = out if direct else out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        write(target)
        if not direct:
            os.replace(target, out)
    except Exception as exc:  # OSError, or polars' own error for the same refusal
        if not direct:
            target.unlink(missing_ok=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        place = out if direct else f"a file in {out.parent}"
        raise UsageError(f"--out {out}: cannot write {place}: {reason.splitlines()[0]}") from None


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

    def render(stream: TextIO | None) -> None:
        wide = stream is None and sys.stdout.isatty()
        console = Console(file=stream, width=None if wide else 160)
        console.print(table if rows else "no bars match")

    if out is None:
        render(None)
        return

    def to_file(path: Path) -> None:
        with path.open("w", encoding="utf-8") as stream:
            render(stream)

    _write_out(out, to_file)


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
