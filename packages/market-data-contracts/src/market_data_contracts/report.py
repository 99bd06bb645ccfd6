"""Present matrix results: ``matrix.json``, ``matrix.md`` (a step summary) and a rich table."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from .matrix import CellResult, matrix_ok, matrix_verdict
from .verdict import ContractResult, Verdict

_ICONS = {
    Verdict.COMPATIBLE: "✅ compatible",
    Verdict.COMPATIBLE_WITH_NOTICES: "🔔 compatible with notices",
    Verdict.INCOMPATIBLE: "❌ incompatible",
    Verdict.INCOMPLETE: "⚠️ incomplete",
    Verdict.ERROR: "💥 error",
}
_STYLES = {
    Verdict.COMPATIBLE: "green",
    Verdict.COMPATIBLE_WITH_NOTICES: "cyan",
    Verdict.INCOMPATIBLE: "bold red",
    Verdict.INCOMPLETE: "yellow",
    Verdict.ERROR: "bold magenta",
}


def _label(r: CellResult) -> str:
    expected = " (expected)" if r.contract.expected_failure and r.as_expected else ""
    unexpected = " (declared to fail)" if r.contract.expected_failure and not r.as_expected else ""
    return f"{r.verdict.label}{expected}{unexpected}"


def _detail(r: CellResult) -> str:
    c = r.contract
    parts = [c.reason or ""]
    if c.first_failure and c.first_failure.surface_diff:
        parts.append("Core changed: " + "; ".join(c.first_failure.surface_diff[:3]))
    parts += [f"notice: {n.message}" for n in c.notices[:3]]
    return " · ".join(p for p in parts if p)


def matrix_json(results: Sequence[CellResult], elapsed_s: float) -> dict[str, Any]:
    """Return the matrix as JSON data: its verdict and exit code, wall time and every cell."""
    verdict = matrix_verdict(results)
    return {
        "verdict": verdict.value,
        "verdict_label": verdict.label,
        "exit_code": verdict.exit_code,
        "as_expected": matrix_ok(results),
        "elapsed_s": round(elapsed_s, 2),
        "cells": [result.to_json() for result in results],
    }


def matrix_markdown(results: Sequence[CellResult], elapsed_s: float) -> str:
    """Return a Markdown table of the cells, ready for ``$GITHUB_STEP_SUMMARY``."""
    verdict = matrix_verdict(results)
    lines = [
        "## Core contract matrix",
        "",
        f"{len(results)} cells in {elapsed_s:.1f} s: **{_ICONS[verdict]}** "
        f"(exit {verdict.exit_code}).",
        "",
        "| Core | installed | Python | verdict | pass | fail | xfail | skip "
        "| first failure / reason |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        c, k = r.contract, r.contract.counts
        lines.append(
            f"| {c.core_requested} | {c.core_version or '-'} | {c.python} | "
            f"{_ICONS[r.verdict]}{_md_escape(_label(r)[len(r.verdict.label) :])} | "
            f"{k.passed} | {k.failed + k.errors} | {k.xfailed} | {k.skipped} | "
            f"{_md_escape(_detail(r))} |"
        )
    return "\n".join(lines) + "\n"


def matrix_table(results: Sequence[CellResult]) -> Table:
    """Return a rich table of the cells for the terminal."""
    table = Table(title=f"Core contract matrix: {matrix_verdict(results).label}")
    for column in ("Core", "installed", "Python", "verdict", "pass", "fail", "xfail", "skip"):
        table.add_column(
            column, justify="right" if column in {"pass", "fail", "xfail", "skip"} else "left"
        )
    table.add_column("first failure / reason", overflow="fold")
    for r in results:
        c, k = r.contract, r.contract.counts
        table.add_row(
            c.core_requested,
            c.core_version or "-",
            c.python,
            f"[{_STYLES[r.verdict]}]{escape(_label(r))}[/]",
            str(k.passed),
            str(k.failed + k.errors),
            str(k.xfailed),
            str(k.skipped),
            escape(_detail(r)),
        )
    return table


def write_reports(results: Sequence[CellResult], out_dir: Path, elapsed_s: float) -> None:
    """Write ``matrix.json`` and ``matrix.md`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = matrix_json(results, elapsed_s)
    (out_dir / "matrix.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    (out_dir / "matrix.md").write_text(matrix_markdown(results, elapsed_s), encoding="utf-8")


def result_markdown(result: ContractResult, correlation_id: str = "") -> str:
    """Return one run's verdict as Markdown, for a workflow's step summary."""
    c = result.counts
    lines = [
        f"## Core contract suite: {_ICONS[result.verdict]}",
        "",
        f"Core asked `{result.core_requested}`, installed `{result.core_version or '-'}` "
        f"({result.core_source}), Python `{result.python}`; exit {result.exit_code}.",
    ]
    if correlation_id:
        lines.append(f"Correlation id: `{correlation_id}`")
    lines += [
        "",
        "| passed | failed | errors | xfailed | skipped | not applicable |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {c.passed} | {c.failed} | {c.errors} | {c.xfailed} | {c.skipped} "
        f"| {c.not_applicable} |",
        "",
    ]
    if result.reason and result.verdict is not Verdict.COMPATIBLE_WITH_NOTICES:
        lines.append(f"**Why:** {_md_escape(result.reason)}")
    first = result.first_failure
    if first is not None:
        lines.append(f"**First failure:** `{first.test_id}`: {_md_escape(first.message)}")
        lines += [f"- {_md_escape(line)}" for line in first.surface_diff]
    lines += [f"- notice ({n.kind}): {_md_escape(n.message)}" for n in result.notices]
    return "\n".join(lines) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
