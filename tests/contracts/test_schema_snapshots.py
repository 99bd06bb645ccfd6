"""The JSON schema of every Core model the project consumes or produces matches the recorded one.

Snapshots live in ``tests/contracts/snapshots/<Model>.json``. A Core release that changes one
fails with a readable list of what changed. After reviewing a deliberate change, record the new
schemas with ``MDP_UPDATE_SNAPSHOTS=1 pytest tests/contracts -k snapshots``: in that mode each
snapshot test writes its file and skips (it checks nothing), so a recording run is never green.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from market_data_pipeline import core
from market_data_pipeline.contracts.diff import diff_json, render_changes

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("MDP_UPDATE_SNAPSHOTS") == "1"

# name -> model: what the project consumes (events, Core models handed to Sink.write) or produces.
MODELS: dict[str, Any] = {
    "FeedbackEvent": core.FeedbackEvent,
    "RateAdjustment": core.RateAdjustment,
    "Trade": core.Trade,
    "Quote": core.Quote,
    "Bar": core.Bar,
    "Instrument": core.Instrument,
    "EventMeta": core.EventMeta,
    "EventEnvelope[FeedbackEvent]": core.EventEnvelope[core.FeedbackEvent],
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_schema_matches_snapshot(name: str) -> None:
    current = MODELS[name].model_json_schema()
    path = SNAPSHOTS / f"{name}.json"
    if UPDATE:
        path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        pytest.skip(f"recorded {path.name} (MDP_UPDATE_SNAPSHOTS=1): nothing was checked")
    recorded = json.loads(path.read_text(encoding="utf-8"))
    changes = diff_json(recorded, current)
    title = f"{name} schema changed in Core {core.core_version()}"
    assert not changes, render_changes(changes, title)


def test_every_snapshot_is_checked() -> None:
    recorded = {path.stem for path in SNAPSHOTS.glob("*.json")}
    assert recorded == set(MODELS), "remove stale snapshots or add the model to MODELS"
