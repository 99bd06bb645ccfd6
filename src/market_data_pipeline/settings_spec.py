"""Every run setting, declared once: its key, stage, command-line form, help and default.

A setting's key is its config-file key (``on_bad_row``), its flag without dashes
(``--on-bad-row``) and, upper-cased, its environment variable (``MDP_ON_BAD_ROW``).
``config.RunSettings`` validates these keys into typed fields (durations in unit-suffixed
fields, ``grace`` -> ``grace_ns``); ``cli.options`` makes each command's options from this
table. Defaults are written as a user would write them (``"2s"``, ``0.25``) and go through the
same validation as a user's value. Stdlib only: ``mdp run -h`` reads this without pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from .defaults import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_BUS,
    DEFAULT_DLQ_MAXLEN,
    DEFAULT_DWELL_S,
    DEFAULT_FETCH_BATCH,
    DEFAULT_GRACE,
    DEFAULT_HARD_ENTER,
    DEFAULT_HARD_EXIT,
    DEFAULT_MAX_ENTRY_BYTES,
    DEFAULT_NATS_URL,
    DEFAULT_QUEUE_CAPACITY,
    DEFAULT_RESOLUTION,
    DEFAULT_SINK,
    DEFAULT_SOFT_ENTER,
    DEFAULT_SOFT_EXIT,
    DEFAULT_SYMBOLS,
)

# Stages, in the order of a tick's path; each is a panel of ``mdp run --help``.
SOURCE = "Source"
BARS = "Bars"
STORE = "Store and batching"
FEEDBACK = "Backpressure feedback"
NATS = "NATS JetStream source"
OUTPUT = "Output"
STAGES = (SOURCE, BARS, STORE, FEEDBACK, NATS, OUTPUT)
ENV_PREFIX = "MDP_"


@dataclass(frozen=True)
class Setting:
    """One run setting as a user sees it."""

    key: str
    stage: str
    help: str
    # What the command line parses before validation: str for durations and lists given as text.
    flag_type: Any = str
    default: Any = None
    metavar: str | None = None
    short: str | None = None
    # Shown as ``[default: ...]`` instead of ``default`` when the default depends on others.
    shown_default: str | None = None
    # A flag that may be repeated, each adding one value.
    repeated: bool = False

    @property
    def flag(self) -> str:
        """The long flag, ``--on-bad-row``."""
        return "--" + self.key.replace("_", "-")

    @property
    def env(self) -> str:
        """The environment variable, ``MDP_ON_BAD_ROW``."""
        return ENV_PREFIX + self.key.upper()


def _s(key: str, stage: str, help: str, **kw: Any) -> Setting:
    return Setting(key, stage, help, **kw)


SETTINGS: tuple[Setting, ...] = (
    # -- where ticks come from
    _s(
        "source",
        SOURCE,
        "Where ticks come from: synthetic, replay (implied by --input), nats (a JetStream"
        " stream, see --stream) or provider:NAME (a Core MarketDataProvider, e.g."
        " provider:ibkr).",
        metavar="SOURCE",
        shown_default="synthetic",
    ),
    _s(
        "input",
        SOURCE,
        "CSV or Parquet file, quoted glob ('data/*.csv') or directory of trades, quotes or"
        " bars; repeat to add more. All are merged into one stream in event time.",
        metavar="PATH",
        short="-i",
        repeated=True,
    ),
    _s(
        "kind",
        SOURCE,
        "What the rows are; detected from the columns when omitted.",
        flag_type=Literal["trades", "quotes", "bars"],
        short="-k",
    ),
    _s(
        "symbol",
        SOURCE,
        "Instrument of a file without a symbol column, or the one synthetic instrument.",
        metavar="SYMBOL",
        short="-s",
    ),
    _s(
        "symbols",
        SOURCE,
        "Synthetic instruments, comma-separated.",
        default=DEFAULT_SYMBOLS,
        metavar="A,B,...",
    ),
    _s(
        "seed",
        SOURCE,
        "Synthetic random seed: same seed and --start, same ticks.",
        flag_type=int,
        default=0,
        metavar="N",
    ),
    _s(
        "rate",
        SOURCE,
        "Synthetic target rate in ticks/s; unset: as fast as possible (demo: 5000).",
        flag_type=float,
        metavar="TICKS_PER_S",
    ),
    _s(
        "speed",
        SOURCE,
        "Replay at X times the recorded pace; unset: as fast as possible.",
        flag_type=float,
        metavar="X",
    ),
    _s(
        "duration",
        SOURCE,
        "Stop after this many seconds; open windows are still written.",
        metavar="SECONDS",
        short="-d",
    ),
    _s(
        "ticks",
        SOURCE,
        "Synthetic: stop after N ticks.",
        flag_type=int,
        metavar="N",
        short="-n",
    ),
    _s(
        "start",
        SOURCE,
        "Synthetic: event time of the first tick, e.g. 2024-01-02T09:30:00Z; unset: now.",
        metavar="ISO_TIME",
    ),
    _s(
        "ts_unit",
        SOURCE,
        "Unit of epoch-number timestamps (auto: by magnitude).",
        flag_type=Literal["auto", "s", "ms", "us", "ns"],
        default="auto",
    ),
    _s(
        "ts_format",
        SOURCE,
        "strftime format of timestamp strings, e.g. '%m/%d/%Y' or '%Y%m%d %H:%M:%S'.",
        metavar="FORMAT",
    ),
    _s(
        "columns",
        SOURCE,
        "Names of a header-less CSV's columns, e.g. ts,price,size.",
        metavar="NAME,...",
    ),
    _s(
        "format",
        SOURCE,
        "Column layout of a known export.",
        flag_type=Literal["binance-aggtrades", "binance-klines", "tardis-trades"],
    ),
    _s(
        "on_bad_row",
        SOURCE,
        "fail: stop at the first bad row, write nothing (exit 2); skip: skip and count.",
        flag_type=Literal["fail", "skip"],
        default="fail",
    ),
    _s(
        "on_duplicate",
        SOURCE,
        "A trade or quote that another input file repeats exactly: fail names both files and"
        " writes nothing (exit 2); skip drops and counts it.",
        flag_type=Literal["fail", "skip"],
        default="fail",
    ),
    _s(
        "resume",
        SOURCE,
        "Replay with checkpoints (bars, open windows and the input position committed every"
        " --checkpoint-interval) and continue after the last one of the same input.",
        flag_type=bool,
        default=False,
    ),
    _s(
        "provider_option",
        SOURCE,
        "Option of --source provider:NAME, repeatable, e.g. host=127.0.0.1 port=4002.",
        metavar="KEY=VALUE",
        repeated=True,
    ),
    # -- bars
    _s(
        "on_late",
        BARS,
        "Ticks that come after their window closed (beyond --grace): count them and warn, or"
        " fail the run and write nothing (exit 1).",
        flag_type=Literal["count", "fail"],
        default="count",
    ),
    _s(
        "resolution",
        BARS,
        "Bar sizes, comma-separated: 1s, 5s, 1m (or 1min), 1h, 1d, 1w, 1mo, 1q, 1y.",
        default=DEFAULT_RESOLUTION,
        metavar="SIZES",
        short="-r",
        shown_default=f"{DEFAULT_RESOLUTION}; demo: 1s,1m",
    ),
    _s(
        "grace",
        BARS,
        "How long a window waits for ticks after its end, e.g. 2s or 500ms; later ticks are"
        " late (see --allowed-lateness).",
        default=DEFAULT_GRACE,
        metavar="DURATION",
        short="-g",
    ),
    _s(
        "allowed_lateness",
        BARS,
        "Keep closed windows this long past their close (on the symbol's watermark): a late"
        " tick within it revises its bar, written again with revision + 1.",
        default="0s",
        metavar="DURATION",
    ),
    _s(
        "late_output",
        BARS,
        "Keep ticks later than that with the window they missed: late.parquet, late.csv, or"
        " table:NAME in the store (replay a file with mdp run --input).",
        metavar="URL",
    ),
    _s(
        "tz",
        BARS,
        "IANA zone of naive timestamps and of 1d/1w/1mo windows, e.g. America/New_York.",
        default="UTC",
        metavar="ZONE",
        shown_default="UTC; with --calendar, 1w and longer follow the exchange's zone",
    ),
    _s(
        "calendar",
        BARS,
        "Exchange calendar (XNYS, XNAS, XLON, CMES, XTKS ...): 1d bars are sessions, labelled"
        " 1d@CODE; ticks outside sessions are counted, not used.",
        metavar="CODE",
    ),
    _s(
        "align",
        BARS,
        "session: intraday windows start at each session's open.",
        flag_type=Literal["epoch", "session"],
        default="epoch",
    ),
    _s(
        "week_start",
        BARS,
        "First day of 1w bars: monday (ISO weeks), sunday ...",
        default="monday",
        metavar="DAY",
    ),
    _s(
        "fill_gaps",
        BARS,
        "With --calendar: write flat bars (previous close, volume 0) for in-session windows"
        " without ticks.",
        flag_type=bool,
        default=False,
    ),
    # -- the store and the write queue in front of it
    _s(
        "sink",
        STORE,
        "Store: sqlite:///path.db or postgresql://user@host/db.",
        default=DEFAULT_SINK,
        metavar="URL",
        short="-S",
    ),
    _s(
        "table",
        STORE,
        "Table of the bars (a run creates it if missing); schema.table in PostgreSQL.",
        metavar="NAME",
        shown_default="bars",
    ),
    _s(
        "queue_capacity",
        STORE,
        "Bars the write queue holds before ingest waits.",
        flag_type=int,
        default=DEFAULT_QUEUE_CAPACITY,
        metavar="BARS",
    ),
    _s(
        "batch_rows",
        STORE,
        "Bars per store write.",
        flag_type=int,
        default=DEFAULT_BATCH_ROWS,
        metavar="BARS",
    ),
    _s(
        "batch_interval",
        STORE,
        "Write a partial batch after this long.",
        default=0.5,
        metavar="SECONDS",
    ),
    _s(
        "write_retry_for",
        STORE,
        "Keep retrying a store that is down this long, e.g. 5m; given, start waits for it too."
        " Errors no retry fixes (a read-only store, a table of another shape) fail at once.",
        metavar="DURATION",
        shown_default="60s, and a store unreachable at start fails in 3 s",
    ),
    _s(
        "write_attempts",
        STORE,
        "At most N tries per store write; unset: as many as --write-retry-for allows.",
        flag_type=int,
        metavar="N",
    ),
    # -- backpressure feedback
    _s(
        "bus",
        FEEDBACK,
        "Feedback bus: memory:// (in-process) or redis://host:6379/0 (Core's format).",
        default=DEFAULT_BUS,
        metavar="URL",
        short="-b",
    ),
    _s("namespace", FEEDBACK, "Redis stream namespace.", default="mdp", metavar="NAME"),
    _s("group", FEEDBACK, "Redis consumer group.", default="pipeline", metavar="NAME"),
    _s(
        "feedback_stream",
        FEEDBACK,
        "Redis stream key to obey, repeatable; {namespace} is replaced. market-data-store"
        " publishes to '{namespace}:{namespace}.telemetry.feedback'.",
        metavar="KEY",
        shown_default="{namespace}:telemetry.feedback",
        repeated=True,
    ),
    _s(
        "coordinator",
        FEEDBACK,
        "Coordinator id this run's write queue reports as.",
        default="mdp-store",
        metavar="ID",
        short="-I",
    ),
    _s(
        "soft_scale",
        FEEDBACK,
        "Rate scale under soft backpressure.",
        flag_type=float,
        default=0.5,
        metavar="0..1",
    ),
    _s(
        "hard_scale",
        FEEDBACK,
        "Rate scale under hard backpressure (0: paused).",
        flag_type=float,
        default=0.0,
        metavar="0..1",
    ),
    _s(
        "policy",
        FEEDBACK,
        'Scales per provider, e.g. \'{"replay": {"soft": 0.8, "hard": 0.1}}\'.',
        metavar="JSON",
    ),
    _s(
        "soft_enter",
        FEEDBACK,
        "Write-queue fill (0..1) at which this run reports soft.",
        flag_type=float,
        default=DEFAULT_SOFT_ENTER,
        metavar="FILL",
    ),
    _s(
        "soft_exit",
        FEEDBACK,
        "Fill below which soft returns to ok.",
        flag_type=float,
        default=DEFAULT_SOFT_EXIT,
        metavar="FILL",
    ),
    _s(
        "hard_enter",
        FEEDBACK,
        "Fill at which this run reports hard.",
        flag_type=float,
        default=DEFAULT_HARD_ENTER,
        metavar="FILL",
    ),
    _s(
        "hard_exit",
        FEEDBACK,
        "Fill below which hard returns to soft.",
        flag_type=float,
        default=DEFAULT_HARD_EXIT,
        metavar="FILL",
    ),
    _s(
        "dwell",
        FEEDBACK,
        "A level must hold this long before it is reported (no flapping).",
        default=DEFAULT_DWELL_S,
        metavar="SECONDS",
    ),
    _s(
        "stale_after",
        FEEDBACK,
        "A coordinator silent this long stops holding the rate down.",
        default=10.0,
        metavar="SECONDS",
    ),
    _s(
        "bus_fallback",
        FEEDBACK,
        "While the bus is unreachable: keep the last scale, or act as ok or hard.",
        flag_type=Literal["keep", "ok", "hard"],
        default="keep",
    ),
    _s(
        "bus_max_entry_bytes",
        FEEDBACK,
        "Bus entries bigger than this go to the DLQ unread.",
        flag_type=int,
        default=DEFAULT_MAX_ENTRY_BYTES,
        metavar="BYTES",
    ),
    _s(
        "dlq_maxlen",
        FEEDBACK,
        "Keep about this many dead letters, oldest trimmed first.",
        flag_type=int,
        default=DEFAULT_DLQ_MAXLEN,
        metavar="ENTRIES",
    ),
    # -- the NATS JetStream source
    _s(
        "nats_url",
        NATS,
        "NATS server (also `nats://user:pass@host:4222`); a cluster's servers comma-separated.",
        default=DEFAULT_NATS_URL,
        metavar="URL",
    ),
    _s(
        "stream",
        NATS,
        "JetStream stream to consume (create and fill it with `mdp publish`).",
        metavar="NAME",
    ),
    _s(
        "subject",
        NATS,
        "Only these subjects, e.g. 'ticks.>' or one partition 'ticks.2.>'.",
        metavar="FILTER",
        shown_default="every subject of the stream",
    ),
    _s(
        "durable",
        NATS,
        "Durable consumer name; also names the checkpoint in the store (one per worker).",
        default="mdp",
        metavar="NAME",
    ),
    _s(
        "idle_timeout",
        NATS,
        "End the run after this long without a message (catch-up jobs, tests).",
        metavar="SECONDS",
    ),
    _s(
        "fetch_batch",
        NATS,
        "Most messages per JetStream fetch; fewer when they are large (a fetch holds about"
        " 48 MiB at most). Example: --fetch-batch 256.",
        flag_type=int,
        default=DEFAULT_FETCH_BATCH,
        metavar="N",
    ),
    _s(
        "checkpoint_interval",
        NATS,
        "Commit bars, open windows and the stream position (then ack) at least this often (a"
        " live stream commits as soon as a window closes); also a replay's with --resume.",
        default=1.0,
        metavar="SECONDS",
    ),
    # -- output
    _s(
        "metrics_port",
        OUTPUT,
        "Serve Prometheus metrics on 127.0.0.1:PORT/metrics.",
        flag_type=int,
        metavar="PORT",
    ),
    _s(
        "json",
        OUTPUT,
        "Print the summary as JSON on stdout (no progress).",
        flag_type=bool,
        default=False,
        short="-j",
    ),
)

BY_KEY = {setting.key: setting for setting in SETTINGS}
