"""Catch the usual usage errors of ``mdp run`` before polars, pydantic or Core are imported.

A mistyped URL, a missing input file or a missing driver extra should answer in a fraction of a
second; the full validation (``config.load_settings``) runs afterwards and stays the authority.
Only the stdlib and the package's light modules are imported here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..bus.urls import check_bus_url
from ..config_file import read_config_file
from ..defaults import DEFAULT_SINK
from ..errors import UsageError
from ..extras import require_extra
from ..settings_spec import ENV_PREFIX
from ..sinks.schema import parse_table
from ..sinks.urls import parse_sink_url
from ..sources.replay.paths import expand_inputs


def precheck_run(
    config_file: Path | None, environ: Mapping[str, str], flags: Mapping[str, Any]
) -> None:
    """Raise ``UsageError``/``BadInputError`` for a bad sink or bus URL or a missing input."""
    from_file = read_config_file(config_file) if config_file is not None else {}

    def value(name: str) -> Any:
        return _value(name, from_file, environ, flags)

    sink = str(value("sink") or DEFAULT_SINK)
    backend = parse_sink_url(sink).backend
    if backend == "postgresql":
        require_extra("psycopg", "a PostgreSQL sink (--sink postgresql://...)")
    table = value("table")
    parse_table(None if table is None else str(table), backend)
    bus = value("bus")
    check_bus_url(None if bus is None else str(bus))
    source_input = value("input")
    if isinstance(source_input, str | list | tuple):  # one path, or several (repeated --input)
        expand_inputs(source_input)


def extra_arguments_error(command: str, args: Sequence[str]) -> UsageError:
    """Return the error for arguments left over after the options, naming the likely cause.

    ``--input data/*.csv`` unquoted reaches us as ``--input data/a.csv data/b.csv ...``: the
    shell expanded the glob, and only the first file went to ``--input``.
    """
    shown = " ".join(args[:3]) + (" ..." if len(args) > 3 else "")
    if any(Path(arg).exists() for arg in args):
        return UsageError(
            f"unexpected argument(s) {shown}: the shell expanded an unquoted glob into several "
            "files; quote it (--input 'data/*.csv') or repeat --input before each file"
        )
    return UsageError(f"unexpected argument(s) {shown}: {command} takes options only (see -h)")


def raw_setting(name: str, flags: Mapping[str, Any], environ: Mapping[str, str]) -> Any:
    """Return a setting as typed (flag, else ``MDP_`` variable), before any validation."""
    return _value(name, {}, environ, flags)


def _value(
    name: str, from_file: Mapping[str, Any], environ: Mapping[str, str], flags: Mapping[str, Any]
) -> Any:
    """Return the raw value of one setting: flag, else ``MDP_`` variable, else config file."""
    if flags.get(name) is not None:
        return flags[name]
    env = environ.get(ENV_PREFIX + name.upper())
    if env is not None:
        return env
    return from_file.get(name, from_file.get(name.replace("_", "-")))
