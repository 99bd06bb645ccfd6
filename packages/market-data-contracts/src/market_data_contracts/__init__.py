"""Cross-repository contract tooling: the Core-version matrix, surface/diff and fan-out dispatch.

settings   the ``[tool.mdp.contracts]`` table of pyproject.toml
usage      which Core symbols the project's source uses (read, not imported)
surface    describe those symbols in the installed Core (runs standalone in any env)
surfaces   the surface for the installed Core or any Core release
diff       what changed between two JSON documents, leaf by leaf
compat     each surface or model change classified: breaking, additive or cosmetic
verdict    the five verdicts, their exit codes and the ContractResult they are decided from
envs       one uv environment per cell, exactly the Core asked for, verified
junit      pytest JUnit XML to counts, failures (with their contract) and notices
matrix     run the suite per (Core, Python) cell in parallel; decide each cell's verdict
report     matrix.json, matrix.md, the terminal table and a run's step summary
payload    what a valid dispatch request is (stdlib only: the workflow runs it too)
dispatch   the ``repository_dispatch`` sender for Core's release fan-out
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

if TYPE_CHECKING:  # type checkers see the real names; at run time they load on first use
    from .diff import Change, diff_json, diff_surfaces, render_changes
    from .dispatch import DispatchClient, DispatchResult, build_payload
    from .errors import CellSetupError, ContractsError, DispatchError
    from .matrix import Cell, CellResult, matrix_ok, plan_cells, run_matrix
    from .settings import ContractsSettings, ExpectedFailure, load_settings

# Loaded on first use: `mdp --help` registers the contracts commands without importing the
# matrix, dispatch and report machinery behind them.
_EXPORTS = {
    "Cell": "matrix",
    "CellResult": "matrix",
    "CellSetupError": "errors",
    "Change": "diff",
    "ContractsError": "errors",
    "ContractsSettings": "settings",
    "DispatchClient": "dispatch",
    "DispatchError": "errors",
    "DispatchResult": "dispatch",
    "ExpectedFailure": "settings",
    "build_payload": "dispatch",
    "diff_json": "diff",
    "diff_surfaces": "diff",
    "load_settings": "settings",
    "matrix_ok": "matrix",
    "plan_cells": "matrix",
    "render_changes": "diff",
    "run_matrix": "matrix",
}

__all__ = [
    "Cell",
    "CellResult",
    "CellSetupError",
    "Change",
    "ContractsError",
    "ContractsSettings",
    "DispatchClient",
    "DispatchError",
    "DispatchResult",
    "ExpectedFailure",
    "build_payload",
    "diff_json",
    "diff_surfaces",
    "load_settings",
    "matrix_ok",
    "plan_cells",
    "render_changes",
    "run_matrix",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)
