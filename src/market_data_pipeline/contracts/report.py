"""Present matrix results: ``matrix.json``, ``matrix.md`` (a step summary) and a rich table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from .matrix import CellResult, matrix_ok

_ICONS = {
    "passed": "✅ passed",
    "failed": "❌ failed",
    "expected-failure": "⚠️ expected failure",
    "unexpected-pass": "❗ unexpected pass",
    "skipped": "⏭️ skipped",
}
_STYLES = {
    "passed": "green",
    "failed": "bold red",
    "expected-failure": "yellow",
    "unexpected-pass": "bold magenta",
    "skipped": "dim",
}


def matrix_json(results: Sequence[CellResult], elapsed_s: float) -> dict[str, Any]:
    """Return the matrix as JSON data: overall verdict, wall time and every cell."""
    return {
        "as_expected": matrix_ok(results),
        "elapsed_s": round(elapsed_s, 2),
        "cells": [result.to_json() for result in results],
    }


def matrix_markdown(results: Sequence[CellResult], elapsed_s: float) -> str:
    """Return a Markdown table of the cells, ready for ``$GITHUB_STEP_SUMMARY``."""
    verdict = "every cell as expected" if matrix_ok(results) else "some cells NOT as expected"
    lines = [
        "## Core contract matrix",
        "",
        f"{len(results)} cells in {elapsed_s:.1f} s: **{verdict}**.",
        "",
        "| Core | installed | Python | result | pass | fail | xfail | skip "
        "| first failure / reason |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        c = r.counts
        reason = _md_escape(r.reason or "")
        lines.append(
            f"| {r.core} | {r.core_installed or '-'} | {r.python} | {_ICONS[r.state]} | "
            f"{c.passed} | {c.failed + c.errors} | {c.xfailed} | {c.skipped} | {reason} |"
        )
    return "\n".join(lines) + "\n"


def matrix_table(results: Sequence[CellResult]) -> Table:
    """Return a rich table of the cells for the terminal."""
    table = Table(title="Core contract matrix")
    for column in ("Core", "installed", "Python", "result", "pass", "fail", "xfail", "skip"):
        table.add_column(
            column, justify="right" if column in {"pass", "fail", "xfail", "skip"} else "left"
        )
    table.add_column("first failure / reason", overflow="fold")
    for r in results:
        c = r.counts
        table.add_row(
            r.core,
            r.core_installed or "-",
            r.python,
            f"[{_STYLES[r.state]}]{r.state}[/]",
            str(c.passed),
            str(c.failed + c.errors),
            str(c.xfailed),
            str(c.skipped),
            r.reason or "",
        )
    return table


def write_reports(results: Sequence[CellResult], out_dir: Path, elapsed_s: float) -> None:
    """Write ``matrix.json`` and ``matrix.md`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = matrix_json(results, elapsed_s)
    (out_dir / "matrix.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    (out_dir / "matrix.md").write_text(matrix_markdown(results, elapsed_s), encoding="utf-8")


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
