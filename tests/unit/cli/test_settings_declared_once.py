"""Each run setting is declared once: one flag, one config key, one ``MDP_`` variable, one default
and one help text, whichever command shows it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.core import TyperGroup
from typer.main import get_command

from market_data_pipeline.cli.app import app
from market_data_pipeline.cli.options import given_flags
from market_data_pipeline.config import RunSettings, load_settings, validate_settings
from market_data_pipeline.settings_spec import BY_KEY, SETTINGS, STAGES

# A value other than the default for every setting, as a flag or an MDP_ variable writes it, and
# the context some need to be valid (--resume continues a replay).
SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "source": ("synthetic", {}),
    "input": ("a.csv", {}),
    "kind": ("quotes", {}),
    "symbol": ("ES", {}),
    "symbols": ("ES,NQ", {}),
    "seed": ("7", {}),
    "rate": ("100.5", {}),
    "speed": ("2", {}),
    "duration": ("1.5", {}),
    "ticks": ("5", {}),
    "start": ("2024-01-02T09:30:00Z", {}),
    "ts_unit": ("ms", {}),
    "ts_format": ("%Y%m%d", {}),
    "columns": ("ts,price,size", {}),
    "format": ("tardis-trades", {}),
    "on_bad_row": ("skip", {}),
    "on_duplicate": ("skip", {}),
    "resume": ("true", {"input": "a.csv"}),
    "provider_option": ("host=127.0.0.1", {}),
    "on_late": ("fail", {}),
    "resolution": ("5m", {}),
    "grace": ("5s", {}),
    "allowed_lateness": ("1m", {}),
    "late_output": ("late.csv", {}),
    "tz": ("America/New_York", {}),
    "calendar": ("XNYS", {}),
    "align": ("session", {}),
    "week_start": ("sunday", {}),
    "fill_gaps": ("true", {}),
    "sink": ("sqlite:///other.db", {}),
    "table": ("other", {}),
    "queue_capacity": ("10", {}),
    "batch_rows": ("5", {}),
    "batch_interval": ("250ms", {}),
    "write_retry_for": ("5m", {}),
    "write_attempts": ("3", {}),
    "bus": ("redis://127.0.0.1:6379/0", {}),
    "namespace": ("ns", {}),
    "group": ("g", {}),
    "feedback_stream": ("ns:feedback", {}),
    "coordinator": ("c", {}),
    "soft_scale": ("0.4", {}),
    "hard_scale": ("0.1", {}),
    "policy": ('{"replay": {"soft": 0.8}}', {}),
    "soft_enter": ("0.6", {}),
    "soft_exit": ("0.4", {}),
    "hard_enter": ("0.8", {}),
    "hard_exit": ("0.7", {}),
    "dwell": ("1.5", {}),
    "stale_after": ("3", {}),
    "bus_fallback": ("ok", {}),
    "bus_max_entry_bytes": ("100", {}),
    "dlq_maxlen": ("10", {}),
    "nats_url": ("nats://127.0.0.1:4223", {}),
    "stream": ("S", {}),
    "subject": ("ticks.>", {}),
    "durable": ("w1", {}),
    "idle_timeout": ("2", {}),
    "fetch_batch": ("8", {}),
    "checkpoint_interval": ("2", {}),
    "metrics_port": ("9100", {}),
    "json": ("true", {}),
}
FIELD_OF = {str(field.alias): name for name, field in RunSettings.model_fields.items()}


def _command(name: str) -> Any:
    group = get_command(app)
    assert isinstance(group, TyperGroup)
    return group.commands[name]


def _params(command: str) -> dict[str, Any]:
    return {str(p.name): p for p in _command(command).params}


def _from_flag(key: str, text: str, context: dict[str, Any]) -> RunSettings:
    setting = BY_KEY[key]
    args = [setting.flag] if setting.flag_type is bool else [setting.flag, text]
    ctx = _command("run").make_context("run", args)
    flags = given_flags(ctx)
    flags.pop("config", None)
    return load_settings(config_file=None, environ={}, flags={**context, **flags})


def _from_env(key: str, text: str, context: dict[str, Any]) -> RunSettings:
    environ = {BY_KEY[k].env: v for k, v in context.items()} | {BY_KEY[key].env: text}
    return load_settings(config_file=None, environ=environ, flags={})


def _from_file(key: str, text: str, context: dict[str, Any], tmp_path: Path) -> RunSettings:
    value: Any = text
    if key in ("policy", "provider_option"):  # a table in a config file
        value = json.loads(text) if key == "policy" else dict([text.split("=")])
    config = tmp_path / "run.yaml"  # JSON is YAML
    config.write_text(json.dumps({**context, key: value}))
    return load_settings(config_file=config, environ={}, flags={})


def test_the_table_the_model_and_the_samples_name_the_same_settings() -> None:
    assert set(FIELD_OF) == set(BY_KEY) == set(SAMPLES)
    assert len(SETTINGS) == len(BY_KEY)
    assert {setting.stage for setting in SETTINGS} == set(STAGES)


@pytest.mark.parametrize("key", sorted(BY_KEY))
def test_one_flag_one_config_key_and_one_variable_give_the_same_setting(
    key: str, tmp_path: Path
) -> None:
    text, context = SAMPLES[key]
    field = FIELD_OF[key]
    from_flag = _from_flag(key, text, context)
    from_env = _from_env(key, text, context)
    from_file = _from_file(key, text, context, tmp_path)
    assert getattr(from_flag, field) == getattr(from_env, field) == getattr(from_file, field)
    assert getattr(from_flag, field) != getattr(RunSettings(), field)


@pytest.mark.parametrize("key", sorted(BY_KEY))
def test_the_flag_has_the_settings_default_and_help(key: str) -> None:
    setting = BY_KEY[key]
    param = _params("run")[key]
    assert param.opts[0] == setting.flag
    assert [o for o in param.opts if len(o) == 2] == ([setting.short] if setting.short else [])
    assert RunSettings.model_fields[FIELD_OF[key]].description == setting.help
    if setting.shown_default is None:
        assert param.help == setting.help
    else:
        assert param.help == f"{setting.help} \\[default: {setting.shown_default}]"
    if param.default is not None and not setting.repeated:
        assert validate_settings({key: param.default}) == RunSettings()
    else:
        assert setting.shown_default is not None or setting.default in (None, ())


def test_no_two_settings_share_a_flag() -> None:
    flags = [opt for p in _params("run").values() for opt in (*p.opts, *p.secondary_opts)]
    assert len(flags) == len(set(flags))


SHARED = {
    "publish": ("nats_url", "input", "kind", "symbol", "symbols", "seed", "ticks", "start", "json"),
    "bars": ("sink", "table"),
}


@pytest.mark.parametrize("command", sorted(SHARED))
def test_other_commands_show_a_setting_as_mdp_run_does(command: str) -> None:
    run, params = _params("run"), _params(command)
    for name in SHARED[command]:
        param = params[name]
        assert (param.opts, param.help, param.default) == (
            run[name].opts,
            run[name].help,
            run[name].default,
        ), name
