"""The examples of docs/api.md run as written, on a small trades file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
TRADES = """timestamp,ticker,price,qty
2024-01-02T14:30:00Z,ES,100.0,1
2024-01-02T14:31:10Z,ES,102.0,2
2024-01-02T14:33:00Z,ES,100.0,3
2024-01-02T14:36:00Z,ES,101.75,4
2024-01-02T14:36:30Z,NQ,200,1
"""


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_every_python_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "trades.csv").write_text(TRADES)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "trades-1.csv").write_text(TRADES)
    monkeypatch.chdir(tmp_path)
    blocks = _python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 3
    namespace: dict[str, object] = {}
    for block in blocks:  # one notebook session: later blocks use earlier names
        exec(compile(block, str(DOC), "exec"), namespace)
    report = namespace["report"]
    assert getattr(report, "reconciled", False)
    assert getattr(report, "bars_written", 0) > 0
    assert (tmp_path / "mdp.db").is_file()
