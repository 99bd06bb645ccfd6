"""Core's Pulse envelope for FeedbackEvents: encode with Core's codec, decode strictly.

An envelope is JSON ``{ts, key, meta: {schema_id, track, headers, hash}, payload}``. We encode
with Core's ``JsonCodec`` and our schema id ``telemetry.FeedbackEvent``. Decoding accepts both ids
Core uses (``core.FEEDBACK_SCHEMA_IDS``) and rejects, with a reason, anything else: not JSON, no
meta, an unknown schema id or track, a non-finite timestamp, an invalid FeedbackEvent. Core's own
``decode`` is not used: it raises bare ``KeyError``/``TypeError`` on a malformed envelope and spends
time on a hash check it then ignores.

``market-data-store``'s ``FeedbackPublisherService`` hands Core's bus a whole ``EventEnvelope``,
which Core's bus wraps once more: the outer schema id is ``events.envelope.EventEnvelope``
and its payload is the envelope holding the FeedbackEvent. That one level of nesting is unwrapped
(both envelopes are checked); deeper nesting is poison.
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import ValidationError

from ..core import FEEDBACK_SCHEMA_ID, FEEDBACK_SCHEMA_IDS, FeedbackEvent, JsonCodec
from ..errors import BusError

_REASON_MAX = 500
# The outer schema id Core's bus stamps on an EventEnvelope published as a payload.
NESTED_ENVELOPE_SCHEMA_ID = "events.envelope.EventEnvelope"
_KNOWN_SCHEMA_IDS = FEEDBACK_SCHEMA_IDS | {NESTED_ENVELOPE_SCHEMA_ID}


class PoisonEntryError(BusError):
    """A stream entry that is not a valid FeedbackEvent envelope; ``str()`` is the reason."""


def encode_event(event: FeedbackEvent, codec: JsonCodec | None = None) -> bytes:
    """Encode a FeedbackEvent as a Pulse envelope (Core's JsonCodec, our schema id)."""
    return bytes((codec or JsonCodec("v1")).encode(FEEDBACK_SCHEMA_ID, event))


def decode_event(data: bytes) -> FeedbackEvent:
    """Decode and validate a Pulse envelope holding a FeedbackEvent; raise PoisonEntryError.

    The FeedbackEvent may sit one envelope deeper, under the outer schema id
    ``events.envelope.EventEnvelope`` (how ``market-data-store`` publishes it).
    """
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise PoisonEntryError(f"not JSON: {exc}") from None
    schema_id, payload = _open_envelope(raw, "envelope")
    if schema_id == NESTED_ENVELOPE_SCHEMA_ID:
        schema_id, payload = _open_envelope(payload, "nested envelope")
        if schema_id == NESTED_ENVELOPE_SCHEMA_ID:
            raise PoisonEntryError("envelope nested more than one level deep")
    if schema_id not in FEEDBACK_SCHEMA_IDS:
        raise PoisonEntryError(f"unknown schema_id {schema_id!r}"[:_REASON_MAX])
    try:
        event = FeedbackEvent.model_validate(payload)
    except ValidationError as exc:
        raise PoisonEntryError(f"invalid FeedbackEvent: {_short(exc)}") from None
    if not math.isfinite(event.ts):
        raise PoisonEntryError(f"FeedbackEvent ts is not finite: {event.ts!r}")
    return event


def _open_envelope(raw: Any, what: str) -> tuple[str, dict[str, Any]]:
    """Check one envelope's shape; return its schema id and payload object."""
    if not isinstance(raw, dict):
        raise PoisonEntryError(f"{what} is not a JSON object")
    meta = raw.get("meta")
    if not isinstance(meta, dict):
        raise PoisonEntryError(f"{what} has no meta object")
    schema_id = meta.get("schema_id")
    if not isinstance(schema_id, str) or schema_id not in _KNOWN_SCHEMA_IDS:
        raise PoisonEntryError(f"unknown schema_id {schema_id!r}"[:_REASON_MAX])
    if meta.get("track", "v1") not in ("v1", "v2"):
        raise PoisonEntryError(f"unknown track {meta.get('track')!r}"[:_REASON_MAX])
    ts = raw.get("ts")
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not math.isfinite(ts):
        raise PoisonEntryError(f"{what} ts is not a finite number: {ts!r}"[:_REASON_MAX])
    payload = raw.get("payload")
    if not isinstance(payload, dict):
        raise PoisonEntryError(f"{what} payload is not a JSON object")
    return schema_id, payload


def refuse_future(event: FeedbackEvent, now_s: float, max_skew_s: float) -> None:
    """Raise ``PoisonEntryError`` if ``event`` is dated more than ``max_skew_s`` after ``now_s``.

    Such an event would become its coordinator's clock and make every real one look stale.
    """
    ahead_s = float(event.ts) - now_s
    if ahead_s > max_skew_s:
        raise PoisonEntryError(
            f"FeedbackEvent from the future: ts {event.ts!r} is {ahead_s:,.1f} s ahead of this "
            f"host's clock (clock-skew tolerance {max_skew_s:g} s)"
        )


def _short(exc: ValidationError) -> str:
    parts = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return "; ".join(parts)[:_REASON_MAX]
