"""``mdp`` follows its ecosystem's conventions and answers usage errors before heavy imports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from probes import probe
from rich.text import Text
from typer._click import Context
from typer.core import TyperGroup, TyperOption
from typer.main import get_command
from typer.testing import CliRunner

from market_data_pipeline.cli.app import app
from market_data_pipeline.config import RunSettings, validate_settings

HEAVY = ("polars", "pyarrow", "numpy", "pydantic", "market_data_core")

# Runs the CLI in a fresh interpreter and reports which heavy packages it imported.
_PROBE = """
import json, sys
from market_data_pipeline.cli.app import app
sys.argv = ["mdp", *sys.argv[1:]]
try:
    app()
except SystemExit as exc:
    code = exc.code
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
print(json.dumps({{"code": code, "heavy": heavy}}), file=sys.stderr)
"""


def _probe(*args: str, cwd: Path) -> dict[str, object]:
    return probe(_PROBE.format(HEAVY=HEAVY), *args, cwd=cwd, timeout_s=60)


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["-h"],
        ["run", "-h"],
        ["bars", "-h"],
        ["run", "--bogus"],
        ["run", "--sink", "bad://x"],
        ["run", "--bus", "nats://x"],
        ["run", "--input", "no-such-file.csv"],
        ["run", "--input", "a.csv", "b.csv"],
        ["publish", "--input", "a.csv", "b.csv"],
        ["run", "--kind", "ticks"],
        ["bars", "--sink", "sqlite:///no-such.db"],
        ["bars", "--format", "parquet"],
        ["feedback", "tail", "-h"],
        ["feedback", "publish", "-l", "bogus"],
        ["feedback", "dlq", "-b", "nats://x"],
        ["contracts", "matrix", "-h"],
        ["contracts", "results", "-C"],
    ],
)
def test_help_and_usage_errors_do_not_import_heavy_packages(
    args: list[str], tmp_path: Path
) -> None:
    result = _probe(*args, cwd=tmp_path)
    assert result["heavy"] == []
    assert result["code"] in (0, 2)


def test_usage_error_from_a_config_file_is_caught_early(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text('sink = "mysql://x/y"\n')
    result = _probe("run", "--config", str(config), cwd=tmp_path)
    assert result == {"code": 2, "heavy": []}


def _run_options() -> dict[str, object]:
    group = get_command(app)
    assert isinstance(group, TyperGroup)  # mdp has subcommands
    command = group.commands["run"]
    return {str(p.name): p.default for p in command.params}


def test_run_flag_defaults_are_the_settings_defaults() -> None:
    defaults = RunSettings()
    for key, default in _run_options().items():
        if key == "config" or default is None:
            continue
        assert validate_settings({key: default}) == defaults, key


def test_every_setting_has_a_flag() -> None:
    keys = {field.alias for field in RunSettings.model_fields.values()}
    assert keys - set(_run_options()) == set()


def test_short_flags_and_dash_h() -> None:
    result = CliRunner().invoke(app, ["run", "-h"])
    assert result.exit_code == 0
    for short in ("-i", "-s", "-r", "-S", "-n", "-d", "-c", "-h"):
        assert f" {short} " in result.stdout, short


def test_a_flag_default_never_overrides_the_environment(tmp_path: Path) -> None:
    sink = f"sqlite:///{tmp_path / 'env.db'}"
    env = {"MDP_SINK": sink, "MDP_GRACE": "5s"}
    result = CliRunner().invoke(
        app, ["run", "--ticks", "50", "--json", "--resolution", "1m"], env=env
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["sink"] == sink


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield " ".join(path), command
        return
    for name, sub in subcommands.items():
        yield from _commands(sub, (*path, name))


# A short flag means one thing everywhere; -n is "N items" of what the command counts.
_SAME_MEANING: dict[str, set[str]] = {"-n": {"--ticks", "--limit", "--count"}}


def test_a_short_flag_is_used_once_per_command_and_means_the_same_everywhere() -> None:
    meaning: dict[str, set[str]] = {}
    for name, command in _commands(get_command(app)):
        seen: list[str] = []
        for param in command.params:
            seen += [*param.opts, *param.secondary_opts]
            shorts = [o for o in param.opts if len(o) == 2]
            longs = [o for o in param.opts if o.startswith("--")]
            for short in shorts:
                meaning.setdefault(short, set()).update(longs)
        assert len(seen) == len(set(seen)), name
    for short, names in meaning.items():
        assert len(names) == 1 or names <= _SAME_MEANING.get(short, set()), (short, names)


@pytest.mark.parametrize(
    ("command", "shorts"),
    [
        (["feedback", "publish"], ["-b", "-l", "-I", "-h"]),
        (["feedback", "tail"], ["-b", "-j", "-n", "-h"]),
        (["feedback", "dlq"], ["-b", "-j", "-n", "-h"]),
        (["contracts", "run"], ["-o", "-L", "-R"]),
        (["contracts", "matrix"], ["-C", "-p", "-o", "-L", "-R"]),
        (["contracts", "surface"], ["-C", "-o"]),
        (["contracts", "diff"], ["-j"]),
        (["contracts", "dispatch"], ["-R", "-p"]),
        (["contracts", "can-i-deploy"], ["-C", "-R", "-L", "-j"]),
        (["contracts", "results"], ["-C", "-R", "-L", "-j"]),
        (["contracts", "page"], ["-o", "-L"]),
        (["contracts", "rollup"], ["-L"]),
        (["run"], ["-b", "-I", "-j"]),
        (["bars"], ["-j"]),
    ],
)
def test_help_shows_the_short_flags(command: list[str], shorts: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "-h"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for short in shorts:
        assert f" {short} " in result.stdout, short


def _help_texts() -> Iterator[tuple[str, str]]:
    for name, command in _commands(get_command(app)):
        yield name, command.help or ""
        for param in command.params:
            yield f"{name} {param.name}", getattr(param, "help", None) or ""


def test_help_text_is_shown_literally() -> None:
    # Help is rendered as rich markup: a bracket that is not escaped ("[default: 1m]",
    # "[tool.mdp.contracts]") would be taken for a style and vanish from the help.
    for where, text in _help_texts():
        assert Text.from_markup(text).plain == text.replace("\\[", "["), where


def test_every_option_names_its_value() -> None:
    # "--sink URL", "--limit N" or the choices: never a bare <str>, <int> or <path>.
    for name, command in _commands(get_command(app)):
        for param in command.params:
            if not isinstance(param, TyperOption) or param.is_flag:
                continue
            shown = param.make_metavar(Context(command))
            assert not shown.startswith("<") or "|" in shown, (name, param.name, shown)


@pytest.mark.parametrize("command", ["run", "publish"])
def test_an_unquoted_glob_gets_a_hint_naming_the_quotes(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a.csv", "b.csv", "c.csv"):
        (tmp_path / name).write_text("ts,price,size\n")
    monkeypatch.chdir(tmp_path)
    # What the shell passes for `mdp run --input *.csv`.
    result = CliRunner().invoke(app, [command, "--input", "a.csv", "b.csv", "c.csv"])
    assert result.exit_code == 2
    assert "unexpected argument(s) b.csv c.csv" in result.stderr
    assert "quote it (--input 'data/*.csv')" in result.stderr


def test_a_stray_word_is_refused_as_not_an_option(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--sink", f"sqlite:///{tmp_path / 'x.db'}", "fast"])
    assert result.exit_code == 2
    assert "unexpected argument(s) fast: mdp run takes options only" in result.stderr


def test_dash_h_works_on_every_command() -> None:
    for name, _ in _commands(get_command(app)):
        result = CliRunner().invoke(app, [*name.split(), "-h"])
        assert result.exit_code == 0, name
        assert "Usage: " in result.stdout, name
