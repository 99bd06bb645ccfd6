"""FeedbackEvent -> JSON, Pulse envelope -> the real FeedbackHandler -> RateAdjustment -> RateGate.

The scales come from the handler's own policy, never from numbers written here; what Core's
documentation fixes is asserted: ok is full rate, hard pauses, soft lies strictly between.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from pydantic import ValidationError

from market_data_pipeline import core

from .conftest import project_attr

PROVIDER = "synthetic"
LEVELS = ("ok", "soft", "hard")

# Written out, not taken from the code under test: Core's docs name the first, its buses stamp the
# second, and the project must accept both.
SCHEMA_IDS = ["telemetry.FeedbackEvent", "telemetry.backpressure.FeedbackEvent"]


def _event(level: str, ts: float | None = None, coordinator: str = "store-1") -> Any:
    return core.FeedbackEvent(
        coordinator_id=coordinator,
        queue_size={"ok": 10, "soft": 80, "hard": 99}[level],
        capacity=100,
        level=core.BackpressureLevel(level),
        ts=time.time() if ts is None else ts,
    )


class Recorder:
    """Wrap the real gate's ``apply`` to keep every RateAdjustment it receives."""

    def __init__(self, gate: Any) -> None:
        self.adjustments: list[Any] = []
        original = gate.apply

        async def apply(adj: Any) -> None:
            self.adjustments.append(adj)
            await original(adj)

        gate.apply = apply


@pytest.fixture
def gate() -> Any:
    return project_attr("flow.rate_gate", "RateGate")(PROVIDER, 1000.0)


@pytest.fixture
def handler(gate: Any) -> Any:
    return project_attr("flow.feedback", "FeedbackHandler")({PROVIDER: gate})


@pytest.mark.parametrize("level", LEVELS)
def test_feedback_event_json_round_trip(level: str) -> None:
    event = _event(level)
    assert core.FeedbackEvent.model_validate_json(event.model_dump_json()) == event
    assert json.loads(event.model_dump_json())["level"] == level


@pytest.mark.parametrize("schema_id", SCHEMA_IDS)
@pytest.mark.parametrize("level", LEVELS)
def test_pulse_envelope_round_trip(level: str, schema_id: str) -> None:
    event = _event(level)
    data = core.JsonCodec("v1").encode(schema_id, event, key=PROVIDER)
    envelope = core.JsonCodec("v1").decode(data, core.FeedbackEvent)
    assert envelope.payload == event
    assert (envelope.meta.schema_id, envelope.key) == (schema_id, PROVIDER)


def test_policy_matches_core_semantics(handler: Any) -> None:
    scale = {lv: handler.policy.scale(PROVIDER, core.BackpressureLevel(lv)) for lv in LEVELS}
    assert scale["ok"] == 1.0 and scale["hard"] == 0.0
    assert 0.0 < scale["soft"] < 1.0


@pytest.mark.parametrize("schema_id", SCHEMA_IDS)
@pytest.mark.parametrize("path", [("soft",), ("hard",), ("soft", "hard", "ok"), ("hard", "soft")])
async def test_event_over_the_wire_reaches_the_gate(
    gate: Any, handler: Any, path: tuple[str, ...], schema_id: str
) -> None:
    recorder = Recorder(gate)
    codec = core.JsonCodec("v1")
    sent = time.time()  # recent: the handler may ignore events that are already old on arrival
    for step, level in enumerate(path):
        wire = codec.encode(schema_id, _event(level, ts=sent + step))
        received = codec.decode(wire, core.FeedbackEvent).payload
        assert await handler.handle(received) == "applied"
        expected = handler.policy.scale(PROVIDER, core.BackpressureLevel(level))
        assert gate.scale == expected
        assert gate.level == core.BackpressureLevel(level)
        adj = recorder.adjustments[-1]
        assert isinstance(adj, core.RateAdjustment)
        assert (adj.provider, adj.scale, adj.reason) == (PROVIDER, expected, level)
        # The adjustment itself survives Core's codec (it is a Core contract too).
        back = codec.decode(codec.encode("telemetry.RateAdjustment", adj), core.RateAdjustment)
        assert back.payload == adj
    assert len(recorder.adjustments) == len(path)


async def test_ok_at_full_rate_changes_nothing(gate: Any, handler: Any) -> None:
    recorder = Recorder(gate)
    assert await handler.handle(_event("ok")) == "unchanged"
    assert gate.scale == 1.0 and recorder.adjustments == []


INVALID_PAYLOADS = {
    "negative queue": {"queue_size": -1},
    "zero capacity": {"capacity": 0},
    "unknown level": {"level": "purple"},
    "missing coordinator": {"coordinator_id": None},
    "text ts": {"ts": "yesterday"},
}


@pytest.mark.parametrize("change", INVALID_PAYLOADS.values(), ids=INVALID_PAYLOADS.keys())
def test_core_rejects_invalid_events_on_decode(change: dict[str, Any]) -> None:
    payload = {**_event("hard").model_dump(mode="json"), **change}
    if change.get("coordinator_id", "") is None:
        del payload["coordinator_id"]
    raw = {"ts": time.time(), "key": None, "meta": {"schema_id": "telemetry.FeedbackEvent"}}
    data = json.dumps({**raw, "payload": payload}).encode()
    with pytest.raises(ValidationError):
        core.JsonCodec("v1").decode(data, core.FeedbackEvent)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"coordinator_id": "x", "level": "hard"}, id="a dict"),
        pytest.param("hard", id="a string"),
        pytest.param(None, id="None"),
        pytest.param("nan-ts", id="non-finite ts"),
    ],
)
async def test_handler_refuses_invalid_events(gate: Any, handler: Any, bad: Any) -> None:
    if bad == "nan-ts":
        bad = _event("hard", ts=float("nan"))
    recorder = Recorder(gate)
    assert await handler.handle(bad) == "invalid"
    assert gate.scale == 1.0 and recorder.adjustments == []


async def test_stale_events_do_not_move_the_gate(gate: Any, handler: Any) -> None:
    now = time.time()
    await handler.handle(_event("hard", ts=now))
    assert await handler.handle(_event("ok", ts=now - 1.0)) == "stale"
    assert gate.scale == 0.0


async def test_unknown_fields_are_ignored_by_core_and_the_handler(gate: Any, handler: Any) -> None:
    payload = {**_event("soft").model_dump(mode="json"), "added_in_a_later_core": 1}
    raw = {"ts": time.time(), "key": None, "meta": {"schema_id": "telemetry.FeedbackEvent"}}
    data = json.dumps({**raw, "payload": payload}).encode()
    event = core.JsonCodec("v1").decode(data, core.FeedbackEvent).payload
    assert await handler.handle(event) == "applied"
    assert gate.scale == handler.policy.scale(PROVIDER, core.BackpressureLevel.soft)
