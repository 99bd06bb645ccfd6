"""Every Core model the project consumes or produces still has the contract it was reviewed with.

A snapshot (``tests/contracts/snapshots/<Model>.json``) holds what the pipeline depends on, not the
whole JSON schema: field names, JSON types, required-ness, defaults, constraints, enum values and
base classes, frozen/extra, validators and serializers (``surface.model_contract``). Descriptions
and titles are not in it, so editing them changes nothing. Each difference is classified
(``compat``): a breaking one fails the test, an additive one (an optional field added, a type
widened, a default changed) passes with a notice.

After reviewing a deliberate change, record the new contracts with
``MDP_UPDATE_SNAPSHOTS=1 pytest tests/contracts -k snapshots``: in that mode each snapshot test
writes its file and skips (it checks nothing), so a recording run is never green.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from market_data_contracts.compat import compare_models, render_findings
from market_data_contracts.surface import model_contract
from market_data_pipeline import core

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("MDP_UPDATE_SNAPSHOTS") == "1"

# name -> (model, the Core symbol it is): what the project consumes (events, Core models handed to
# Sink.write) or produces.
MODELS: dict[str, tuple[Any, str]] = {
    "FeedbackEvent": (core.FeedbackEvent, "market_data_core.telemetry:FeedbackEvent"),
    "RateAdjustment": (core.RateAdjustment, "market_data_core.telemetry:RateAdjustment"),
    "Trade": (core.Trade, "market_data_core._models:Trade"),
    "Quote": (core.Quote, "market_data_core._models:Quote"),
    "Bar": (core.Bar, "market_data_core._models:Bar"),
    "Instrument": (core.Instrument, "market_data_core._models:Instrument"),
    "EventMeta": (core.EventMeta, "market_data_core.events.envelope:EventMeta"),
    "EventEnvelope[FeedbackEvent]": (
        core.EventEnvelope[core.FeedbackEvent],
        "market_data_core.events.envelope:EventEnvelope",
    ),
}
PARAMS = [
    pytest.param(name, id=name, marks=pytest.mark.core_contract(f"schema {name}", symbol))
    for name, (_, symbol) in MODELS.items()  # the models first, then the envelope they travel in
]


@pytest.mark.parametrize("name", PARAMS)
def test_schema_matches_snapshot(name: str, notice: Callable[..., None]) -> None:
    current = model_contract(MODELS[name][0])
    path = SNAPSHOTS / f"{name}.json"
    if UPDATE:
        path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        pytest.skip(f"recorded {path.name} (MDP_UPDATE_SNAPSHOTS=1): nothing was checked")
    recorded = json.loads(path.read_text(encoding="utf-8"))
    findings = compare_models(name, recorded, current)
    breaking = [f for f in findings if f.severity == "breaking"]
    title = f"{name} contract changed in Core {core.core_version()}"
    assert not breaking, render_findings(breaking, title)
    for finding in findings:
        notice("additive", f"{finding.where}: {finding.message}")


def test_every_snapshot_is_checked() -> None:
    recorded = {path.stem for path in SNAPSHOTS.glob("*.json")} - {"surface"}
    assert recorded == set(MODELS), "remove stale snapshots or add the model to MODELS"
