"""Which files an ``--input`` names (stdlib only, so the CLI checks it before heavy imports)."""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from ...errors import BadInputError

# What a directory's files must be called to be replayed (readers.py decides for named files).
_DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq", ".parq")
_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zstd")


def expand_inputs(patterns: str | Sequence[str]) -> list[Path]:
    """Return the files named by paths, globs (``**`` recursive) and directories, in order.

    A glob's matches are sorted by name; a directory gives the files in it a replay can read
    (CSV, TSV, text or Parquet, compressed or not), sorted; a file named twice is read once.
    Raise ``BadInputError`` for a pattern that names no file.
    """
    found: dict[Path, None] = {}
    for pattern in [patterns] if isinstance(patterns, str) else patterns:
        for path in _expand(pattern):
            found.setdefault(path.resolve(), None)
    if not found:
        raise BadInputError("no input file given")
    return list(found)


def _expand(pattern: str) -> list[Path]:
    expanded = os.path.expanduser(pattern)
    if glob.has_magic(expanded) and not Path(expanded).is_file():  # "a[1].csv" may be a name
        found = sorted(Path(p) for p in glob.glob(expanded, recursive=True) if Path(p).is_file())
    elif Path(expanded).is_dir():
        found = sorted(p for p in Path(expanded).iterdir() if _replayable(p))
        if not found:
            raise BadInputError("no CSV or Parquet file in this directory", path=expanded)
    else:
        found = [Path(expanded)] if Path(expanded).is_file() else []
        if not found and os.path.exists(expanded):
            raise BadInputError(f"not a regular file ({_file_kind(expanded)})", path=expanded)
    if not found:
        raise BadInputError(f"no file matches {pattern!r}")
    return found


def _replayable(path: Path) -> bool:
    if path.name.startswith(".") or not path.is_file():
        return False
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSED_SUFFIXES:
        suffixes = suffixes[:-1]
    return bool(suffixes) and suffixes[-1] in _DATA_SUFFIXES


def _file_kind(path: str) -> str:
    mode = os.stat(path).st_mode
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"))
    return next((name for test, name in kinds if test(mode)), "not a file")
