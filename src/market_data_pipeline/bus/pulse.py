"""Core's Pulse envelope for FeedbackEvents: encode with Core's codec, decode strictly.

An envelope is JSON ``{ts, key, meta: {schema_id, track, headers, hash}, payload}``. We encode
with Core's ``JsonCodec`` and our schema id ``telemetry.FeedbackEvent``. Decoding accepts both ids
Core uses (``core.FEEDBACK_SCHEMA_IDS``) and rejects, with a reason, anything else: not JSON, no
meta, an unknown schema id or track, a non-finite timestamp, an invalid FeedbackEvent. Core's own
``decode`` is not used: it raises bare ``KeyError``/``TypeError`` on a malformed envelope and spends
time on a hash check it then ignores.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import ValidationError

from ..core import FEEDBACK_SCHEMA_ID, FEEDBACK_SCHEMA_IDS, FeedbackEvent, JsonCodec
from ..errors import BusError

_REASON_MAX = 500


class PoisonEntryError(BusError):
    """A stream entry that is not a valid FeedbackEvent envelope; ``str()`` is the reason."""


def encode_event(event: Any, codec: JsonCodec | None = None) -> bytes:
    """Encode a FeedbackEvent as a Pulse envelope (Core's JsonCodec, our schema id)."""
    return bytes((codec or JsonCodec("v1")).encode(FEEDBACK_SCHEMA_ID, event))


def decode_event(data: bytes) -> Any:
    """Decode and validate a Pulse envelope holding a FeedbackEvent; raise PoisonEntryError."""
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise PoisonEntryError(f"not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise PoisonEntryError("envelope is not a JSON object")
    meta = raw.get("meta")
    if not isinstance(meta, dict):
        raise PoisonEntryError("envelope has no meta object")
    schema_id = meta.get("schema_id")
    if not isinstance(schema_id, str) or schema_id not in FEEDBACK_SCHEMA_IDS:
        raise PoisonEntryError(f"unknown schema_id {schema_id!r}"[:_REASON_MAX])
    if meta.get("track", "v1") not in ("v1", "v2"):
        raise PoisonEntryError(f"unknown track {meta.get('track')!r}"[:_REASON_MAX])
    ts = raw.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        raise PoisonEntryError(f"envelope ts is not a finite number: {ts!r}"[:_REASON_MAX])
    payload = raw.get("payload")
    if not isinstance(payload, dict):
        raise PoisonEntryError("envelope payload is not a JSON object")
    try:
        event = FeedbackEvent.model_validate(payload)
    except ValidationError as exc:
        raise PoisonEntryError(f"invalid FeedbackEvent: {_short(exc)}") from None
    if not math.isfinite(event.ts):
        raise PoisonEntryError(f"FeedbackEvent ts is not finite: {event.ts!r}")
    return event


def _short(exc: ValidationError) -> str:
    parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts)[:_REASON_MAX]
