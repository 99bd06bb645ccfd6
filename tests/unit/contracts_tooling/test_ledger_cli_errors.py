"""The commands that read the ledger: one line and exit 2 for a ledger or --core they cannot use.

``can-i-deploy``, ``results`` and ``page`` only read: a mistyped ledger path is an error that
creates nothing (not an empty ledger answered "unknown"), a --core that is not a release version
is refused, and a ledger that cannot be read is exit 2 in all three alike.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from market_data_contracts.cli import contracts_app
from market_data_contracts.ledger import open_ledger

from .records_helpers import make_record


def _mdp(cwd: Path, *argv: str) -> tuple[int, str]:
    here = Path.cwd()
    os.chdir(cwd)  # a relative sqlite path lands here, where the test can look for it
    try:
        result = CliRunner().invoke(contracts_app, list(argv))
    finally:
        os.chdir(here)
    return result.exit_code, result.output


def _one_line(output: str) -> str:
    lines = output.strip().splitlines()
    assert len(lines) == 1, output
    return lines[0]


def test_can_i_deploy_on_a_missing_ledger_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    argv = ("can-i-deploy", "-L", "sqlite:///missing.db", "-C", "1.5.0", "-R", "acme/pipeline")
    code, output = _mdp(tmp_path, *argv)
    assert code == 2
    assert "missing.db does not exist" in _one_line(output) and "unknown" not in output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("core", ["notaversion", "latest", "1.5.0 ", "v1.5.0", ""])
def test_can_i_deploy_refuses_a_core_that_is_not_a_release_version(
    tmp_path: Path, core: str
) -> None:
    url = f"sqlite:///{tmp_path / 'contracts.db'}"
    open_ledger(url).publish([make_record()])
    code, output = _mdp(tmp_path, "can-i-deploy", "-L", url, "-C", core, "-R", "acme/pipeline")
    assert code == 2
    assert "is not a Core release version" in _one_line(output)


@pytest.mark.parametrize("core", ["1.4.62", "1.5.0rc1", "1.5.0.post1", "2.0.0.dev3"])
def test_can_i_deploy_accepts_release_versions(tmp_path: Path, core: str) -> None:
    url = f"sqlite:///{tmp_path / 'contracts.db'}"
    open_ledger(url).publish([make_record()])
    code, output = _mdp(tmp_path, "can-i-deploy", "-L", url, "-C", core, "-R", "acme/pipeline")
    assert code == 2 and "no result for Core" in output  # answered (unknown), not refused


def _corrupt(tmp_path: Path, how: str) -> str:
    path = tmp_path / "contracts.db"
    if how == "not a database":
        path.write_bytes(b"this is not SQLite\n" * 100)
    else:  # a ledger whose record column holds something else than a record
        url = f"sqlite:///{path}"
        open_ledger(url).publish([make_record()])
        with sqlite3.connect(path) as conn:
            conn.execute("""UPDATE contract_records SET record = '{"half": '""")
    return f"sqlite:///{path}"


@pytest.mark.parametrize("how", ["not a database", "a broken record"])
@pytest.mark.parametrize(
    "argv",
    [
        ("can-i-deploy", "-C", "1.5.0", "-R", "acme/pipeline"),
        ("results",),
        ("page", "-o", "site"),
    ],
    ids=["can-i-deploy", "results", "page"],
)
def test_a_corrupt_ledger_is_exit_2_in_every_reading_command(
    tmp_path: Path, how: str, argv: tuple[str, ...]
) -> None:
    url = _corrupt(tmp_path, how)
    code, output = _mdp(tmp_path, *argv, "-L", url)
    assert code == 2, output
    assert _one_line(output).startswith("error: ledger sqlite:///")
    assert not (tmp_path / "site").exists()
