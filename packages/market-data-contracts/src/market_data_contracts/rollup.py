"""Roll the records of many runs (matrix cells run as separate CI jobs) into one summary.

Each record keeps the verdict its run decided; the roll-up only compares it with what
``[tool.mdp.contracts] expected-failures`` declares (``ContractResult.as_expected``): an
incompatible cell that is declared is an *expected failure*, a declared cell that passes is an
*unexpected pass*.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import ContractsError
from .page import version_key
from .record import VerificationRecord
from .settings import ContractsSettings


@dataclass(frozen=True)
class RolledCell:
    """One record and how it compares with the declared expectations."""

    record: VerificationRecord
    expected_failure: str | None

    @property
    def as_expected(self) -> bool:
        """Return whether this cell ended as the project expects."""
        result = dataclasses.replace(self.record.result, expected_failure=self.expected_failure)
        return result.as_expected

    @property
    def outcome(self) -> str:
        """Return the words for the table: the verdict, or how it differs from expectations."""
        if self.expected_failure is None:
            return self.record.verdict.label
        return "expected failure" if self.as_expected else "unexpected pass"


def find_records(folders: Sequence[Path]) -> list[VerificationRecord]:
    """Return every ``record.json`` found under ``folders``; raise on an unreadable one."""
    records = []
    for folder in folders:
        for path in sorted(Path(folder).rglob("record.json")):
            try:
                records.append(VerificationRecord.from_json(json.loads(path.read_text("utf-8"))))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ContractsError(f"{path}: not a verification record: {exc}") from None
    return records


def classify(records: Sequence[VerificationRecord], conf: ContractsSettings) -> list[RolledCell]:
    """Pair each record with the expected failure declared for its Core and Python."""
    cells = []
    for record in records:
        declared = conf.expected_failure(record.core_version, record.python) or (
            conf.expected_failure(record.result.core_requested, record.python)
        )
        cells.append(RolledCell(record, declared.reason if declared else None))
    return sorted(cells, key=lambda c: (version_key(c.record.core_version), c.record.python))


def markdown(cells: Sequence[RolledCell]) -> str:
    """Return the roll-up as a Markdown table with a one-line headline."""
    bad = [c for c in cells if not c.as_expected]
    head = (
        f"{len(cells)} cell(s), all as expected"
        if not bad
        else f"{len(bad)} of {len(cells)} cell(s) NOT as expected"
    )
    lines = [
        "## Core contract matrix",
        "",
        head,
        "",
        "| Core | Python | outcome | passed | failed | skipped | xfailed | first failure, reason |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for cell in cells:
        r = cell.record.result
        why = f"{r.first_failure.test_id}: {r.first_failure.message}" if r.first_failure else ""
        why = why or (cell.expected_failure or r.reason or "")
        link = f"[{cell.outcome}]({cell.record.run_url})" if cell.record.run_url else cell.outcome
        lines.append(
            f"| {cell.record.core_version} | {cell.record.python} | {link} | {r.counts.passed} "
            f"| {r.counts.failed + r.counts.errors} | {r.counts.skipped} | {r.counts.xfailed} "
            f"| {why.replace('|', '/')} |"
        )
    return "\n".join(lines)
