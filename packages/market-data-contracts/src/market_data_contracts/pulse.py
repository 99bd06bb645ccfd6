"""Core's Pulse envelope for FeedbackEvents as a consumer accepts it: decoded strictly.

An envelope is JSON ``{ts, key, meta: {schema_id, track, headers, hash}, payload}``. Decoding
accepts both schema ids Core uses (``core.FEEDBACK_SCHEMA_IDS``) and rejects, with a reason,
anything else: not JSON, no meta, an unknown schema id or track, a non-finite timestamp, an
invalid FeedbackEvent. Core's own ``decode`` is not used: it raises bare ``KeyError``/
``TypeError`` on a malformed envelope and spends time on a hash check it then ignores.

``market-data-store``'s ``FeedbackPublisherService`` hands Core's bus a whole ``EventEnvelope``,
which Core's bus wraps once more: the outer schema id is ``events.envelope.EventEnvelope``
and its payload is the envelope holding the FeedbackEvent. That one level of nesting is unwrapped
(both envelopes are checked); deeper nesting is poison.

The pipeline's feedback bus decodes with this module, and the conformance kit's ``redis_reader``
too: what a publisher is checked against is what the pipeline accepts. Importing it imports Core.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import ValidationError

from .core import FEEDBACK_SCHEMA_IDS, FeedbackEvent

_REASON_MAX = 500
# The outer schema id Core's bus stamps on an EventEnvelope published as a payload.
NESTED_ENVELOPE_SCHEMA_ID = "events.envelope.EventEnvelope"
_KNOWN_SCHEMA_IDS = FEEDBACK_SCHEMA_IDS | {NESTED_ENVELOPE_SCHEMA_ID}


class PoisonEnvelopeError(ValueError):
    """Data that is not a valid FeedbackEvent envelope; ``str()`` is the reason."""


def decode_event(data: bytes) -> FeedbackEvent:
    """Decode and validate a Pulse envelope holding a FeedbackEvent; raise PoisonEnvelopeError.

    The FeedbackEvent may sit one envelope deeper, under the outer schema id
    ``events.envelope.EventEnvelope`` (how ``market-data-store`` publishes it).
    """
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise PoisonEnvelopeError(f"not JSON: {exc}") from None
    schema_id, payload = _open_envelope(raw, "envelope")
    if schema_id == NESTED_ENVELOPE_SCHEMA_ID:
        schema_id, payload = _open_envelope(payload, "nested envelope")
        if schema_id == NESTED_ENVELOPE_SCHEMA_ID:
            raise PoisonEnvelopeError("envelope nested more than one level deep")
    if schema_id not in FEEDBACK_SCHEMA_IDS:
        raise PoisonEnvelopeError(f"unknown schema_id {schema_id!r}"[:_REASON_MAX])
    try:
        event = FeedbackEvent.model_validate(payload)
    except ValidationError as exc:
        raise PoisonEnvelopeError(f"invalid FeedbackEvent: {_short(exc)}") from None
    if not math.isfinite(event.ts):
        raise PoisonEnvelopeError(f"FeedbackEvent ts is not finite: {event.ts!r}")
    return event


def _open_envelope(raw: Any, what: str) -> tuple[str, dict[str, Any]]:
    """Check one envelope's shape; return its schema id and payload object."""
    if not isinstance(raw, dict):
        raise PoisonEnvelopeError(f"{what} is not a JSON object")
    meta = raw.get("meta")
    if not isinstance(meta, dict):
        raise PoisonEnvelopeError(f"{what} has no meta object")
    schema_id = meta.get("schema_id")
    if not isinstance(schema_id, str) or schema_id not in _KNOWN_SCHEMA_IDS:
        raise PoisonEnvelopeError(f"unknown schema_id {schema_id!r}"[:_REASON_MAX])
    if meta.get("track", "v1") not in ("v1", "v2"):
        raise PoisonEnvelopeError(f"unknown track {meta.get('track')!r}"[:_REASON_MAX])
    ts = raw.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        raise PoisonEnvelopeError(f"{what} ts is not a finite number: {ts!r}"[:_REASON_MAX])
    payload = raw.get("payload")
    if not isinstance(payload, dict):
        raise PoisonEnvelopeError(f"{what} payload is not a JSON object")
    return schema_id, payload


def _short(exc: ValidationError) -> str:
    parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts)[:_REASON_MAX]
