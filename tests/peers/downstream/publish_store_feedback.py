"""Publish FeedbackEvents the way market-data-store does: its FeedbackBus and Pulse publisher.

Usage: ``python publish_store_feedback.py COORDINATOR LEVEL [LEVEL ...]`` with the store's own
settings from the environment (``EVENT_BUS_BACKEND=redis``, ``REDIS_URL``, ``MD_NAMESPACE``).
Each level goes through ``feedback_bus().publish(...)``, which the store's
``FeedbackPublisherService`` (started with its default ``PulseConfig()``) forwards to Core's bus.
Prints one line per level; exits 1 if the service reported a failure.
"""

from __future__ import annotations

import asyncio
import sys

from market_data_core.telemetry import BackpressureLevel
from market_data_store.coordinator.feedback import FeedbackEvent, feedback_bus
from market_data_store.pulse import FeedbackPublisherService, PulseConfig


async def main(coordinator: str, levels: list[str]) -> int:
    service = FeedbackPublisherService(PulseConfig())
    await service.start()
    failures = 0
    try:
        for level in levels:
            size = {"ok": 10, "soft": 75, "hard": 98}[level]
            event = FeedbackEvent.create(
                coordinator, size, 100, BackpressureLevel(level), reason=f"kit {level}"
            )
            try:
                await feedback_bus().publish(event)
            except Exception as exc:  # the store's bus swallows errors; report any that escape
                failures += 1
                print(f"{level}: {type(exc).__name__}: {exc}", flush=True)
            else:
                print(f"{level}: published", flush=True)
    finally:
        await service.stop()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2:])))
