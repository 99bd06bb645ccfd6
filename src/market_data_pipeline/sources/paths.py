"""Which files an ``--input`` names (stdlib only, so the CLI checks it before heavy imports)."""

from __future__ import annotations

import glob
import os
import stat
from pathlib import Path

from ..errors import BadInputError


def expand_inputs(pattern: str) -> list[Path]:
    """Return the files a path or glob (``**`` recursive) names, sorted; raise if none."""
    expanded = os.path.expanduser(pattern)
    if glob.has_magic(expanded) and not Path(expanded).is_file():  # "a[1].csv" may be a name
        found = sorted(Path(p) for p in glob.glob(expanded, recursive=True) if Path(p).is_file())
    else:
        found = [Path(expanded)] if Path(expanded).is_file() else []
        if not found and os.path.exists(expanded):
            raise BadInputError(f"not a regular file ({_file_kind(expanded)})", path=expanded)
    if not found:
        raise BadInputError(f"no file matches {pattern!r}")
    return found


def _file_kind(path: str) -> str:
    mode = os.stat(path).st_mode
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a device"))
    return next((name for test, name in kinds if test(mode)), "not a file")
