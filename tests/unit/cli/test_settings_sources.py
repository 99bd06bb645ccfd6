"""Every ``mdp run`` setting comes from a flag, a config file key or an ``MDP_`` variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from market_data_pipeline.config import RunSettings, load_settings
from market_data_pipeline.errors import UsageError

# The settings once reachable only through a file or the environment, each with a value that is
# not its default, as a config file and as an MDP_ variable write it.
TUNING = {
    "soft_enter": (0.6, "0.6"),
    "soft_exit": (0.4, "0.4"),
    "hard_enter": (0.8, "0.8"),
    "hard_exit": (0.7, "0.7"),
    "dwell": (1.5, "1.5"),  # seconds
    "write_attempts": (3, "3"),
    "write_retry_for": ("5m", "5m"),
}
# Durations are read into fields named with their unit.
FIELD = {"dwell": "dwell_s", "write_retry_for": "write_retry_for_s"}
TYPED = {"write_retry_for": 300.0}


def test_toml_lists_for_every_list_setting(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        'resolution = ["1m", "5m"]\n'
        'symbols = ["ES", "NQ"]\n'
        'input = ["a.csv", "b.csv"]\n'
        'feedback_stream = ["mdp:one", "mdp:two"]\n'
        '[provider_option]\nhost = "127.0.0.1"\n'
    )
    settings = load_settings(config_file=config, environ={}, flags={})
    assert settings.resolution == "1m,5m"
    assert settings.symbols == ("ES", "NQ")
    assert settings.input == ("a.csv", "b.csv")
    assert settings.feedback_stream == ("mdp:one", "mdp:two")
    assert settings.provider_option == {"host": "127.0.0.1"}


def test_yaml_lists_too(tmp_path: Path) -> None:
    config = tmp_path / "run.yaml"
    config.write_text("resolution: [1m, 5m]\nsymbols:\n  - ES\n  - NQ\n")
    settings = load_settings(config_file=config, environ={}, flags={})
    assert (settings.resolution, settings.symbols) == ("1m,5m", ("ES", "NQ"))


@pytest.mark.parametrize("name", sorted(TUNING))
def test_tuning_settings_from_file_environment_and_flag(name: str, tmp_path: Path) -> None:
    value, text = TUNING[name]
    field = FIELD.get(name, name)
    assert getattr(RunSettings(), field) != value
    config = tmp_path / "run.toml"
    config.write_text(f"{name} = {value!r}\n".replace("'", '"'))
    from_file = load_settings(config_file=config, environ={}, flags={})
    from_env = load_settings(config_file=None, environ={f"MDP_{name.upper()}": text}, flags={})
    from_flag = load_settings(config_file=None, environ={}, flags={name: value})
    assert getattr(from_file, field) == getattr(from_env, field) == getattr(from_flag, field)
    assert getattr(from_file, field) == TYPED.get(name, value)


def test_an_unknown_file_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text('resolutoin = "1m"\n')
    with pytest.raises(UsageError, match="unknown setting 'resolutoin'"):
        load_settings(config_file=config, environ={}, flags={})


def test_a_bad_value_names_the_setting_and_the_reason_only() -> None:
    with pytest.raises(UsageError) as caught:
        load_settings(config_file=None, environ={}, flags={"provider_option": ["host"]})
    assert str(caught.value) == (
        "invalid settings: provider-option: expected KEY=VALUE, e.g. host=127.0.0.1"
    )


def test_a_synthetic_run_with_no_end_is_the_demo_and_says_so_in_its_settings() -> None:
    demo = load_settings(config_file=None, environ={}, flags={})
    assert (demo.duration_s, demo.rate, demo.resolution) == (10.0, 5_000.0, "1s,1m")
    given = load_settings(config_file=None, environ={"MDP_RESOLUTION": "5m"}, flags={"rate": 50})
    assert (given.duration_s, given.rate, given.resolution) == (10.0, 50.0, "5m")


def test_a_bounded_run_or_settings_built_directly_are_run_as_given() -> None:
    bounded = load_settings(config_file=None, environ={}, flags={"ticks": 5})
    assert (bounded.duration_s, bounded.rate, bounded.resolution) == (None, None, "1m")
    direct = RunSettings()
    assert (direct.duration_s, direct.rate, direct.resolution) == (None, None, "1m")
