"""Replaying files: ``ReplaySource`` (``source``) reads CSV, Parquet and Arrow inputs.

``paths`` expands the inputs, ``formats`` and ``readers`` read each export layout in chunks,
``row_count`` sizes them for progress, ``merge`` interleaves several files by time and
``pacing`` replays at ``--speed``. The tick checks every input shares are ``..cleaning``.
"""

from ..._lazy import lazy_exports

__getattr__ = lazy_exports(__name__, {"ReplaySource": "source"})
