"""Core's Pulse envelope for FeedbackEvents: encode with Core's codec, decode strictly.

We encode with Core's ``JsonCodec`` and our schema id ``telemetry.FeedbackEvent``. Decoding is
``market_data_contracts.pulse``'s (the rules a consumer applies, which the conformance kit checks
publishers against): both ids Core uses, one level of ``EventEnvelope`` nesting (how
``market-data-store`` publishes), and a reason for anything else.
"""

from __future__ import annotations

from market_data_contracts import pulse

from ..core import FEEDBACK_SCHEMA_ID, FeedbackEvent, JsonCodec
from ..errors import BusError


class PoisonEntryError(BusError):
    """A stream entry that is not a valid FeedbackEvent envelope; ``str()`` is the reason."""


def encode_event(event: FeedbackEvent, codec: JsonCodec | None = None) -> bytes:
    """Encode a FeedbackEvent as a Pulse envelope (Core's JsonCodec, our schema id)."""
    return bytes((codec or JsonCodec("v1")).encode(FEEDBACK_SCHEMA_ID, event))


def decode_event(data: bytes) -> FeedbackEvent:
    """Decode and validate a Pulse envelope holding a FeedbackEvent; raise PoisonEntryError."""
    try:
        return pulse.decode_event(data)
    except pulse.PoisonEnvelopeError as exc:
        raise PoisonEntryError(str(exc)) from None


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
