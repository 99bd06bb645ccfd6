"""A Core RateController that keeps the scale of the last adjustment it was given."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from market_data_core.telemetry import RateAdjustment


class ScaleKeeper:
    """Core's ``RateController``: ``apply`` records the adjustment's scale."""

    def __init__(self) -> None:
        self.scale = 1.0

    async def apply(self, adj: RateAdjustment) -> None:
        self.scale = float(adj.scale)
