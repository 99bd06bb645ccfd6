"""Run settings: one frozen model, filled from a config file, then ``MDP_*`` variables, then flags.

Precedence (later wins): built-in defaults < config file (``--config``, TOML or YAML) <
environment (``MDP_<NAME>``, e.g. ``MDP_SINK``) < command-line flags. Config keys are the flag
names without dashes (``on_bad_row`` or ``on-bad-row``); an unknown key is an error, so a typo
never passes silently. The environment is read by the CLI and handed in here, never deep inside.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .config_file import read_config_file
from .defaults import (
    DEFAULT_BATCH_ROWS,
    DEFAULT_DLQ_MAXLEN,
    DEFAULT_DWELL_S,
    DEFAULT_HARD_ENTER,
    DEFAULT_HARD_EXIT,
    DEFAULT_MAX_ENTRY_BYTES,
    DEFAULT_QUEUE_CAPACITY,
    DEFAULT_SINK,
    DEFAULT_SOFT_ENTER,
    DEFAULT_SOFT_EXIT,
)
from .errors import UsageError

DEFAULT_SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG")
DEFAULT_RESOLUTION = "1m"
DEFAULT_GRACE = "2s"
# The no-argument demo: a synthetic run bounded by time, slow enough to watch.
DEMO_DURATION_S = 10.0
DEMO_RATE = 5_000.0
DEMO_RESOLUTION = "1s,1m"
ENV_PREFIX = "MDP_"


class RunSettings(BaseModel):
    """Everything ``mdp run`` can be told; see ``mdp run --help`` for each field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: str | None = None  # synthetic, replay, nats or provider:NAME
    input: tuple[str, ...] | None = None  # files, globs and directories; they accumulate
    kind: Literal["trades", "quotes", "bars"] | None = None
    symbol: str | None = None
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    seed: int = 0
    rate: float | None = Field(default=None, gt=0)
    speed: float | None = Field(default=None, gt=0)
    duration: float | None = Field(default=None, gt=0)
    ticks: int | None = Field(default=None, gt=0)
    start: str | None = None
    resolution: str | None = None
    grace: str = DEFAULT_GRACE
    # How long a closed window stays open to revision by late ticks (0: late ticks count only).
    allowed_lateness: str = "0s"
    # Where ticks later than that go: a .parquet or .csv file, or table:NAME in the store.
    late_output: str | None = None
    ts_unit: Literal["auto", "s", "ms", "us", "ns"] = "auto"
    ts_format: str | None = None
    columns: str | None = None
    format: Literal["binance-aggtrades", "binance-klines", "tardis-trades"] | None = None
    # Time zones, trading calendars and calendar windows.
    tz: str = "UTC"
    calendar: str | None = None
    align: Literal["epoch", "session"] = "epoch"
    week_start: str = "monday"
    fill_gaps: bool = False
    sink: str = DEFAULT_SINK
    table: str | None = None  # the bars table (schema.table in PostgreSQL); None: bars
    on_bad_row: Literal["fail", "skip"] = "fail"
    on_duplicate: Literal["fail", "skip"] = "fail"
    on_late: Literal["count", "fail"] = "count"
    json_output: bool = Field(default=False, alias="json")
    # Write queue and batching.
    queue_capacity: int = Field(default=DEFAULT_QUEUE_CAPACITY, ge=1)
    batch_rows: int = Field(default=DEFAULT_BATCH_ROWS, ge=1)
    batch_interval: float = Field(default=0.5, ge=0)
    write_attempts: int | None = Field(default=None, ge=1)  # None: as many as the budget allows
    # A store down longer than this fails the run; None: 60 s, and a store that cannot be
    # reached at start fails in seconds (given, it is how long start waits too).
    write_retry_for: str | None = None
    # Feedback loop.
    bus: str | None = None
    namespace: str = "mdp"
    group: str = "pipeline"
    # Stream keys to obey, e.g. market-data-store's "{namespace}:{namespace}.telemetry.feedback";
    # empty means "{namespace}:telemetry.feedback".
    feedback_stream: tuple[str, ...] = ()
    coordinator: str = "mdp-store"
    soft_scale: float = Field(default=0.5, ge=0, le=1)
    hard_scale: float = Field(default=0.0, ge=0, le=1)
    policy: dict[str, dict[str, float]] = Field(default_factory=dict)
    soft_enter: float = DEFAULT_SOFT_ENTER
    soft_exit: float = DEFAULT_SOFT_EXIT
    hard_enter: float = DEFAULT_HARD_ENTER
    hard_exit: float = DEFAULT_HARD_EXIT
    dwell: float = Field(default=DEFAULT_DWELL_S, ge=0)
    stale_after: float = Field(default=10.0, gt=0)
    bus_fallback: Literal["keep", "ok", "hard"] = "keep"
    bus_max_entry_bytes: int = Field(default=DEFAULT_MAX_ENTRY_BYTES, ge=1)  # bigger: DLQ, unread
    dlq_maxlen: int = Field(default=DEFAULT_DLQ_MAXLEN, ge=1)  # about this many dead letters kept
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # NATS JetStream source (--source nats).
    nats_url: str = "nats://127.0.0.1:4222"
    stream: str | None = None
    subject: str | None = None
    durable: str = "mdp"
    idle_timeout: float | None = Field(default=None, gt=0)
    fetch_batch: int = Field(default=1_024, ge=1)
    checkpoint_interval: float = Field(default=1.0, gt=0)
    # A replay that checkpoints as it goes and continues after its last checkpoint.
    resume: bool = False
    # Core MarketDataProvider source (--source provider:NAME).
    provider_option: dict[str, str] = Field(default_factory=dict)

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str | None) -> str | None:
        if value is None or value in ("synthetic", "replay", "nats"):
            return value
        if value.startswith("provider:") and len(value) > len("provider:"):
            return value
        raise ValueError("expected synthetic, replay, nats or provider:NAME")

    @field_validator("provider_option", mode="before")
    @classmethod
    def _split_options(cls, value: Any) -> Any:
        # --provider-option host=127.0.0.1 (repeatable) arrives as a list of KEY=VALUE.
        if isinstance(value, list | tuple):
            pairs = [str(item).partition("=") for item in value]
            bad = [key for key, eq, _ in pairs if not eq or not key]
            if bad:
                raise ValueError("expected KEY=VALUE, e.g. host=127.0.0.1")
            return {key: val for key, _, val in pairs}
        return value

    @field_validator("grace", "allowed_lateness", "write_retry_for", mode="before")
    @classmethod
    def _seconds_to_duration(cls, value: Any) -> Any:
        # A bare number in a config file (grace: 5) means seconds.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"{round(value * 1000)}ms"
        return value

    @field_validator("resolution", mode="before")
    @classmethod
    def _join_resolutions(cls, value: Any) -> Any:
        # A TOML or YAML list (resolution = ["1m", "5m"]) means the same as "1m,5m".
        if isinstance(value, list | tuple):
            return ",".join(str(part).strip() for part in value)
        return value

    @field_validator("policy", mode="before")
    @classmethod
    def _policy_json(cls, value: Any) -> Any:
        # --policy takes JSON text; a config file gives a table (a mapping) directly.
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                raise ValueError('expected JSON, e.g. \'{"replay": {"soft": 0.8}}\'') from None
        return value

    @field_validator("input", mode="before")
    @classmethod
    def _inputs_as_tuple(cls, value: Any) -> Any:
        # One path from a config file or MDP_INPUT, several from a list or repeated --input.
        if isinstance(value, str):
            return (value,)
        if isinstance(value, list | tuple) and not value:
            return None
        return value

    @field_validator("symbols", "feedback_stream", mode="before")
    @classmethod
    def _split_symbols(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _input_needs_replay(self) -> RunSettings:
        if self.source == "synthetic" and self.input is not None:
            raise ValueError("--input replays a file: drop --source synthetic or --input")
        if self.source == "nats" and self.input is not None:
            raise ValueError("--input replays a file: drop --source nats or --input")
        if self.source == "nats" and not self.stream:
            raise ValueError("--source nats needs --stream NAME")
        if self.resume:
            self._check_resume()
        return self

    def _check_resume(self) -> None:
        if not self.is_replay:
            raise ValueError(
                "--resume continues a replay (--input); a --source nats run always continues"
                " from its checkpoint"
            )
        if self.on_late == "fail":
            raise ValueError(
                "--resume commits at every checkpoint, so --on-late fail could not leave the"
                " store untouched: drop one of them"
            )
        if self.fill_gaps:
            raise ValueError("--resume does not keep the state of --fill-gaps: drop one of them")

    @property
    def is_replay(self) -> bool:
        """True when the run replays files (``--input`` implies it)."""
        return self.source == "replay" or (self.source is None and self.input is not None)

    @property
    def is_demo(self) -> bool:
        """True for a synthetic run with no end given: the ~10 s demo."""
        return (
            not self.is_replay
            and self.source in (None, "synthetic")
            and self.ticks is None
            and self.duration is None
        )


def load_settings(
    *,
    config_file: Path | None,
    environ: Mapping[str, str],
    flags: Mapping[str, Any],
) -> RunSettings:
    """Merge file, environment and flags (``None`` flags are unset) into validated settings."""
    merged: dict[str, Any] = {}
    if config_file is not None:
        merged.update(_normalise(read_config_file(config_file), origin=str(config_file)))
    merged.update(_from_environ(environ))
    merged.update({k: v for k, v in _normalise(flags, origin="flags").items() if v is not None})
    try:
        return RunSettings.model_validate(merged)
    except ValidationError as exc:
        raise UsageError(_describe(exc)) from None


def _normalise(values: Mapping[str, Any], *, origin: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    known = set(RunSettings.model_fields) | {"json"}
    for key, value in values.items():
        name = key.replace("-", "_").lower()
        if name == "json_output":
            name = "json"
        if name not in known:
            raise UsageError(f"{origin}: unknown setting {key!r}")
        out[name] = value
    return out


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    known = set(RunSettings.model_fields) | {"json"}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name == "policy":
            out[name] = _json_env(key, raw)
        elif name in known:
            out[name] = raw
    return out


def _json_env(key: str, raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise UsageError(f'{key} must be JSON, e.g. \'{{"replay": {{"soft": 0.8}}}}\'') from None


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"]) or "settings"
        message = error["msg"].removeprefix("Value error, ")  # pydantic's wrapper, no news
        parts.append(f"{where.replace('_', '-')}: {message}")
    return "invalid settings: " + "; ".join(parts)
