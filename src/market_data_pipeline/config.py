"""Run settings: one frozen model, filled from a config file, then ``MDP_*`` variables, then flags.

Each setting is declared once, in ``settings_spec.SETTINGS`` (key, stage, flag, help, default);
this model gives it a type, its constraints and a field named with its unit.

Precedence (later wins): built-in defaults < config file (``--config``, TOML or YAML) <
environment (``MDP_<NAME>``, e.g. ``MDP_SINK``) < command-line flags. Config keys are the flag
names without dashes (``on_bad_row`` or ``on-bad-row``); an unknown key is an error, so a typo
never passes silently. The environment is read by the CLI and handed in here, never deep inside.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from .aggregation.resolution import duration_ns, format_duration_ns
from .config_file import read_config_file
from .defaults import DEMO_DURATION_S, DEMO_RATE, DEMO_RESOLUTION
from .errors import PipelineError, UsageError
from .settings_spec import BY_KEY, SETTINGS


def _setting(key: str, **constraints: Any) -> Any:
    """The field of setting ``key``: its default and help from the table, read under its key."""
    spec = BY_KEY[key]
    return Field(default=spec.default, alias=key, description=spec.help, **constraints)


def _to_ns(value: Any) -> Any:
    # The one duration parser: "500ms", "2s", "5m", or a bare number of seconds.
    if value is None:
        return None
    try:
        return duration_ns(value)
    except PipelineError as exc:
        raise ValueError(str(exc)) from None


def _to_seconds(value: Any) -> Any:
    ns = _to_ns(value)
    return None if ns is None else ns / 1e9


# Durations: event-time ones in integer nanoseconds (as the bar engine counts), wall-clock ones
# in float seconds (as asyncio waits). Nanoseconds are written back as text ("2s"), so that
# dumped settings validate to the same settings.
DurationNs = Annotated[
    int, BeforeValidator(_to_ns), PlainSerializer(format_duration_ns, return_type=str)
]
DurationS = Annotated[float, BeforeValidator(_to_seconds)]


class RunSettings(BaseModel):
    """Everything ``mdp run`` can be told, by stage; see ``settings_spec`` for each setting.

    Fields are read under their setting's key (``grace``), named with their unit (``grace_ns``).
    """

    model_config = ConfigDict(
        frozen=True, extra="forbid", validate_default=True, populate_by_name=True
    )

    # Source.
    source: str | None = _setting("source")  # synthetic, replay, nats or provider:NAME
    input: tuple[str, ...] | None = _setting("input")  # files, globs, directories
    kind: Literal["trades", "quotes", "bars"] | None = _setting("kind")
    symbol: str | None = _setting("symbol")
    symbols: tuple[str, ...] = _setting("symbols")
    seed: int = _setting("seed")
    rate: float | None = _setting("rate", gt=0)
    speed: float | None = _setting("speed", gt=0)
    duration_s: DurationS | None = _setting("duration", gt=0)
    ticks: int | None = _setting("ticks", gt=0)
    start: str | None = _setting("start")
    ts_unit: Literal["auto", "s", "ms", "us", "ns"] = _setting("ts_unit")
    ts_format: str | None = _setting("ts_format")
    columns: str | None = _setting("columns")
    format: Literal["binance-aggtrades", "binance-klines", "tardis-trades"] | None = _setting(
        "format"
    )
    on_bad_row: Literal["fail", "skip"] = _setting("on_bad_row")
    on_duplicate: Literal["fail", "skip"] = _setting("on_duplicate")
    # A replay that checkpoints as it goes and continues after its last checkpoint.
    resume: bool = _setting("resume")
    # Core MarketDataProvider source (--source provider:NAME).
    provider_option: dict[str, str] = _setting("provider_option")
    # Bars: windows, lateness, time zones and calendars.
    on_late: Literal["count", "fail"] = _setting("on_late")
    resolution: str = _setting("resolution")
    grace_ns: DurationNs = _setting("grace", ge=0)
    # How long a closed window stays open to revision by late ticks (0: late ticks count only).
    allowed_lateness_ns: DurationNs = _setting("allowed_lateness", ge=0)
    # Where ticks later than that go: a .parquet or .csv file, or table:NAME in the store.
    late_output: str | None = _setting("late_output")
    tz: str = _setting("tz")
    calendar: str | None = _setting("calendar")
    align: Literal["epoch", "session"] = _setting("align")
    week_start: str = _setting("week_start")
    fill_gaps: bool = _setting("fill_gaps")
    # Store, and the write queue and batching in front of it.
    sink: str = _setting("sink")
    table: str | None = _setting("table")  # schema.table in PostgreSQL; None: bars
    queue_capacity: int = _setting("queue_capacity", ge=1)
    batch_rows: int = _setting("batch_rows", ge=1)
    batch_interval_s: DurationS = _setting("batch_interval", ge=0)
    # A store down longer than this fails the run; None: 60 s, and a store that cannot be
    # reached at start fails in seconds (given, it is how long start waits too).
    write_retry_for_s: DurationS | None = _setting("write_retry_for", ge=0)
    write_attempts: int | None = _setting("write_attempts", ge=1)  # None: as the budget allows
    # Backpressure feedback.
    bus: str | None = _setting("bus")
    namespace: str = _setting("namespace")
    group: str = _setting("group")
    # Stream keys to obey, e.g. market-data-store's "{namespace}:{namespace}.telemetry.feedback";
    # empty means "{namespace}:telemetry.feedback".
    feedback_stream: tuple[str, ...] = _setting("feedback_stream")
    coordinator: str = _setting("coordinator")
    soft_scale: float = _setting("soft_scale", ge=0, le=1)
    hard_scale: float = _setting("hard_scale", ge=0, le=1)
    policy: dict[str, dict[str, float]] = _setting("policy")
    soft_enter: float = _setting("soft_enter")
    soft_exit: float = _setting("soft_exit")
    hard_enter: float = _setting("hard_enter")
    hard_exit: float = _setting("hard_exit")
    dwell_s: DurationS = _setting("dwell", ge=0)
    stale_after_s: DurationS = _setting("stale_after", gt=0)
    bus_fallback: Literal["keep", "ok", "hard"] = _setting("bus_fallback")
    bus_max_entry_bytes: int = _setting("bus_max_entry_bytes", ge=1)  # bigger: DLQ, unread
    dlq_maxlen: int = _setting("dlq_maxlen", ge=1)  # about this many dead letters kept
    # NATS JetStream source (--source nats).
    nats_url: str = _setting("nats_url")
    stream: str | None = _setting("stream")
    subject: str | None = _setting("subject")
    durable: str = _setting("durable")
    idle_timeout_s: DurationS | None = _setting("idle_timeout", gt=0)
    fetch_batch: int = _setting("fetch_batch", ge=1)
    checkpoint_interval_s: DurationS = _setting("checkpoint_interval", gt=0)
    # Output.
    metrics_port: int | None = _setting("metrics_port", ge=0, le=65535)
    json_output: bool = _setting("json")

    @field_validator("source")
    @classmethod
    def _known_source(cls, value: str | None) -> str | None:
        if value is None or value in ("synthetic", "replay", "nats"):
            return value
        if value.startswith("provider:") and len(value) > len("provider:"):
            return value
        raise ValueError("expected synthetic, replay, nats or provider:NAME")

    @field_validator("provider_option", "policy", mode="before")
    @classmethod
    def _no_mapping(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("provider_option", mode="before")
    @classmethod
    def _split_options(cls, value: Any) -> Any:
        # --provider-option host=127.0.0.1 (repeatable) arrives as a list of KEY=VALUE, an
        # MDP_PROVIDER_OPTION variable as one text ("host=127.0.0.1 port=4002").
        if isinstance(value, str):
            value = value.replace(",", " ").split()
        if isinstance(value, list | tuple):
            pairs = [str(item).partition("=") for item in value]
            bad = [key for key, eq, _ in pairs if not eq or not key]
            if bad:
                raise ValueError("expected KEY=VALUE, e.g. host=127.0.0.1")
            return {key: val for key, _, val in pairs}
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
        if value is None:
            return ()
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


def with_demo(settings: RunSettings) -> RunSettings:
    """Return the ~10 s demo for a synthetic run with no end, else ``settings`` unchanged.

    ``mdp run`` alone is the demo: it runs for ``DEMO_DURATION_S`` at ``DEMO_RATE`` ticks/s
    into 1s and 1m bars, unless the rate or the resolutions were given.
    """
    endless = settings.ticks is None and settings.duration_s is None
    if settings.is_replay or settings.source not in (None, "synthetic") or not endless:
        return settings
    demo: dict[str, Any] = {"duration_s": DEMO_DURATION_S}
    if settings.rate is None:
        demo["rate"] = DEMO_RATE
    if "resolution" not in settings.model_fields_set:
        demo["resolution"] = DEMO_RESOLUTION
    return settings.model_copy(update=demo)


def load_settings(
    *,
    config_file: Path | None,
    environ: Mapping[str, str],
    flags: Mapping[str, Any],
) -> RunSettings:
    """Merge file, environment and flags (``None`` flags are unset) into validated settings;
    a synthetic run with no end is the demo (``with_demo``)."""
    merged: dict[str, Any] = {}
    if config_file is not None:
        merged.update(_normalise(read_config_file(config_file), origin=str(config_file)))
    merged.update(_from_environ(environ))
    merged.update({k: v for k, v in _normalise(flags, origin="flags").items() if v is not None})
    return with_demo(validate_settings(merged))


def validate_settings(values: Mapping[str, Any]) -> RunSettings:
    """Validate settings given by key (``{"grace": "5s"}``); raise ``UsageError`` naming each
    bad one."""
    try:
        return RunSettings.model_validate(values)
    except ValidationError as exc:
        raise UsageError(_describe(exc)) from None


def _normalise(values: Mapping[str, Any], *, origin: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = key.replace("-", "_").lower()
        if name == "json_output":
            name = "json"
        if name not in BY_KEY:
            raise UsageError(f"{origin}: unknown setting {key!r}")
        out[name] = value
    return out


def _from_environ(environ: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for setting in SETTINGS:
        raw = environ.get(setting.env)
        if raw is None:
            continue
        out[setting.key] = _json_env(setting.env, raw) if setting.key == "policy" else raw
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
