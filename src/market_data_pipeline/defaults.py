"""Defaults shared by the settings table and the modules using them (importing this costs nothing).

Every other default of a run setting is written once, in ``settings_spec.SETTINGS``.
"""

from __future__ import annotations

DEFAULT_SINK = "sqlite:///mdp.db"
DEFAULT_BUS = "memory://"
DEFAULT_SYMBOLS = "AAPL,MSFT,NVDA,AMZN,GOOG"
DEFAULT_RESOLUTION = "1m"
DEFAULT_GRACE = "2s"
# The no-argument demo: a synthetic run bounded by time, slow enough to watch.
DEMO_DURATION_S = 10.0
DEMO_RATE = 5_000.0
DEMO_RESOLUTION = "1s,1m"
# NATS JetStream source: the server, and the most messages per fetch.
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_FETCH_BATCH = 1_024
# Write-queue fill ratios at which backpressure levels are entered and left, and the dwell time a
# level must hold before it is reported (flow/watermarks.py and the settings model share these).
DEFAULT_SOFT_ENTER = 0.70
DEFAULT_SOFT_EXIT = 0.50
DEFAULT_HARD_ENTER = 0.90
DEFAULT_HARD_EXIT = 0.75
DEFAULT_DWELL_S = 0.25
# Write queue: bars it holds before ingest waits, and bars per store write. Large writes matter
# with thousands of symbols (about one bar per few ticks): each write is sorted by key, and one
# 50,000-bar write costs half of what ten 5,000-bar writes cost in SQLite and PostgreSQL. A
# partial batch still goes out after the batch interval, so live latency does not grow.
DEFAULT_QUEUE_CAPACITY = 200_000
DEFAULT_BATCH_ROWS = 50_000
# Redis bus: entries bigger than this go to the dead letters unread; dead letters kept (about).
DEFAULT_MAX_ENTRY_BYTES = 65_536
DEFAULT_DLQ_MAXLEN = 10_000
# GitHub: the API base URL, and the repository_dispatch type of Core's release fan-out.
DEFAULT_GITHUB_API_URL = "https://api.github.com"
DISPATCH_EVENT_TYPE = "core-release"
# Columns of the `bars` table, in order (users' queries and dashboards depend on these names):
# the primary key, then the values. SQL statements and frames build their column lists from these.
KEY_COLUMNS = ("symbol", "resolution", "ts")
VALUE_COLUMNS = ("open", "high", "low", "close", "volume", "vwap", "trades", "end_ts", "incomplete")
TABLE_COLUMNS = KEY_COLUMNS + VALUE_COLUMNS
# Stored columns only some runs write (a frame carries them or not): `revision`, written by
# runs with --allowed-lateness; other runs leave the stored value (0 for a new bar).
OPTIONAL_COLUMNS = ("revision",)
