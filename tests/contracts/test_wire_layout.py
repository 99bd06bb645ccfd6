"""Core's Pulse wire layout, checked without any server: envelope keys, schema ids, stream keys.

The Redis round trips are in ``test_wire_format``; these run everywhere, so a Core that moves a
key or reshapes the envelope fails even where Redis is not available.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from market_data_pipeline import core
from market_data_pipeline.bus.pulse import decode_event, encode_event

from .capabilities import CAPS
from .conftest import project_attr, skip_not_applicable

# Written out, not taken from the code under test: the layout the store and the pipeline share.
ENVELOPE_KEYS = {"ts", "key", "meta", "payload"}
META_KEYS = {"schema_id", "track", "headers", "hash"}
SCHEMA_IDS = ["telemetry.FeedbackEvent", "telemetry.backpressure.FeedbackEvent"]
ENVELOPE = pytest.mark.core_contract(
    "wire envelope",
    "market_data_core.events.codecs:JsonCodec",
    "market_data_core.events.envelope:EventEnvelope",
)
KEYS = pytest.mark.core_contract("wire stream keys", "wire")


def _event() -> Any:
    return core.FeedbackEvent(
        coordinator_id="store-3",
        queue_size=50,
        capacity=100,
        level=core.BackpressureLevel.soft,
        ts=time.time(),
    )


@ENVELOPE
def test_core_envelope_has_the_keys_the_pipeline_reads() -> None:
    data = json.loads(core.JsonCodec("v1").encode("telemetry.FeedbackEvent", _event(), key="k"))
    assert set(data) == ENVELOPE_KEYS
    assert set(data["meta"]) >= META_KEYS
    assert data["key"] == "k" and data["meta"]["schema_id"] == "telemetry.FeedbackEvent"


@ENVELOPE
@pytest.mark.parametrize("schema_id", SCHEMA_IDS)
def test_pipeline_decodes_what_core_encodes(schema_id: str) -> None:
    event = _event()
    assert decode_event(core.JsonCodec("v1").encode(schema_id, event)) == event


@ENVELOPE
def test_core_decodes_what_the_pipeline_encodes() -> None:
    event = _event()
    assert core.JsonCodec("v1").decode(encode_event(event), core.FeedbackEvent).payload == event


@KEYS
def test_core_bus_keys_match_the_pipeline_bus() -> None:
    if not CAPS.core_redis_bus:
        skip_not_applicable("Core's RedisStreamsBus is not importable (no redis dependency)")
    from market_data_core.events.adapters.redis_streams import RedisStreamsBus

    ours = project_attr("bus.redis_streams", "RedisStreamBus")(
        "redis://127.0.0.1:1/0", namespace="ns"
    )
    theirs = RedisStreamsBus("redis://127.0.0.1:1/0", namespace="ns")
    make_key = getattr(theirs, "_make_key", None)
    make_dlq = getattr(theirs, "_make_dlq_key", None)
    if make_key is None or make_dlq is None:  # the Redis round trips still check the layout
        skip_not_applicable("Core's bus has no _make_key/_make_dlq_key to ask")
    stream = ours.key.split(":", 1)[1]
    assert make_key(stream) == ours.key
    assert make_dlq(stream) == ours.dlq_key
