"""Text from data, paths, URLs and flags is printed as typed, never read as rich markup.

Each case was a ``MarkupError`` traceback or silently rewritten text before. URL passwords of
every shape are masked in errors and summaries.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Mdp


def trades(path: Path, price: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"symbol,ts,price,size\nA,2024-01-02T09:00:00Z,{price},1\n")
    return path


@pytest.mark.parametrize("price", ["[/x]", "[bold]12[/bold]", "[link=x]1[/link]"])
def test_a_bad_value_with_markup_is_quoted_literally(mdp: Mdp, tmp_path: Path, price: str) -> None:
    csv = trades(tmp_path / "t.csv", price)
    result = mdp("run", "--input", str(csv), "--sink", f"sqlite:///{tmp_path / 'b.db'}")
    assert result.exit_code == 2, result.output
    assert f"bad price ({price!r})" in result.stderr
    assert "Traceback" not in result.output


def test_a_path_with_markup_is_shown_literally(mdp: Mdp, tmp_path: Path) -> None:
    csv = trades(tmp_path / "in[/x]" / "[bold]t.csv", "100")
    db = tmp_path / "[/x].db"
    result = mdp("run", "--input", str(csv), "--sink", f"sqlite:///{db}")
    assert result.exit_code == 0, result.output
    assert f"replay trades from {csv}" in result.stdout
    assert f"sqlite:///{db}" in result.stdout


@pytest.mark.parametrize(
    "args", [("--resolution", "[/x]"), ("--grace", "[bold]x[/bold]"), ("--start", "[/x]")]
)
def test_a_flag_with_markup_is_quoted_literally(
    mdp: Mdp, tmp_path: Path, args: tuple[str, str]
) -> None:
    result = mdp("run", "--ticks", "10", "--sink", f"sqlite:///{tmp_path / 'b.db'}", *args)
    assert result.exit_code == 2, result.output
    assert args[1] in result.stderr
    assert "Traceback" not in result.output


def test_json_summary_keeps_markup_in_data(mdp: Mdp, tmp_path: Path) -> None:
    csv = trades(tmp_path / "[bold]x[/bold].csv", "1")
    code, summary = mdp.run_json("--input", str(csv), "--sink", f"sqlite:///{tmp_path / 'b.db'}")
    assert code == 0
    assert [f["path"] for f in summary["source"]["files"]] == [str(csv)]


def test_mdp_bars_shows_symbols_literally(mdp: Mdp, tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("symbol,ts,price,size\n[bold]X[/bold],2024-01-02T09:00:00Z,1,1\n")
    sink = f"sqlite:///{tmp_path / 'b.db'}"
    assert mdp("run", "--input", str(csv), "--sink", sink).exit_code == 0
    result = mdp("bars", "--sink", sink)
    assert result.exit_code == 0, result.output
    assert "[bold]X[/bold]" in result.stdout


SECRET = "Sup3rSecretPw"


@pytest.mark.parametrize(
    "flag",
    [
        ("--sink", f"postgresql:/postgres:{SECRET}@127.0.0.1:5999/db"),
        ("--sink", f"postgres//postgres:{SECRET}@127.0.0.1:5999/db"),
        ("--sink", f"postgresql//:{SECRET}@127.0.0.1:5999/db"),
        ("--bus", f"redis:/:{SECRET}@127.0.0.1:6379/0"),
        ("--bus", f"redis//:{SECRET}@127.0.0.1:6379/0"),
        ("--bus", f"redis:{SECRET}@127.0.0.1:6379/0"),
    ],
)
def test_malformed_urls_never_show_the_password(mdp: Mdp, flag: tuple[str, str]) -> None:
    result = mdp("run", "--ticks", "10", *flag)
    assert result.exit_code == 2, result.output
    assert SECRET not in result.output
    code, summary = mdp.run_json("--ticks", "10", *flag)
    assert code == 2
    assert SECRET not in json.dumps(summary)
