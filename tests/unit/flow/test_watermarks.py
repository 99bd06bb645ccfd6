"""WatermarkMonitor: hysteresis, dwell, ordering, heartbeat, flush on close."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from feedback_helpers import ManualClock, RecordingPublisher
from hypothesis import given, settings
from hypothesis import strategies as st

from market_data_pipeline.core import LEVEL_SEVERITY, BackpressureLevel
from market_data_pipeline.errors import UsageError
from market_data_pipeline.flow.watermarks import DepthObserver, WatermarkMonitor, Watermarks

OK, SOFT, HARD = BackpressureLevel.ok, BackpressureLevel.soft, BackpressureLevel.hard
CAPACITY = 1000


def monitor(clock: ManualClock, dwell_s: float = 0.25, **kw: Any) -> WatermarkMonitor:
    return WatermarkMonitor(
        RecordingPublisher(),
        coordinator_id="store-1",
        watermarks=Watermarks(dwell_s=dwell_s),
        heartbeat_s=None,
        clock=clock,
        **kw,
    )


def observe(m: WatermarkMonitor, ratio: float) -> BackpressureLevel:
    m.observe(round(ratio * CAPACITY), CAPACITY)
    return m.level


def test_monitor_is_a_depth_observer(clock: ManualClock) -> None:
    observer: DepthObserver = monitor(clock)
    observer.observe(1, 10)


@pytest.mark.parametrize(
    ("start", "ratio", "expected"),
    [
        (OK, 0.69, OK),
        (OK, 0.70, SOFT),
        (OK, 0.90, HARD),
        (SOFT, 0.51, SOFT),
        (SOFT, 0.49, OK),
        (SOFT, 0.89, SOFT),
        (HARD, 0.76, HARD),
        (HARD, 0.74, SOFT),
        (HARD, 0.60, SOFT),
        (HARD, 0.40, OK),
    ],
)
def test_hysteresis_without_dwell(
    clock: ManualClock, start: BackpressureLevel, ratio: float, expected: BackpressureLevel
) -> None:
    m = monitor(clock, dwell_s=0.0)
    observe(m, {OK: 0.0, SOFT: 0.8, HARD: 0.95}[start])
    assert m.level is start
    assert observe(m, ratio) is expected


def test_escalation_is_immediate_and_deescalation_waits_for_dwell(clock: ManualClock) -> None:
    m = monitor(clock, dwell_s=0.25)
    assert observe(m, 0.95) is HARD  # no dwell on the way up
    assert observe(m, 0.10) is HARD
    clock.advance(0.2)
    assert observe(m, 0.10) is HARD
    clock.advance(0.05)
    assert observe(m, 0.10) is OK


def test_interrupted_calm_restarts_the_dwell(clock: ManualClock) -> None:
    m = monitor(clock, dwell_s=0.25)
    observe(m, 0.95)
    observe(m, 0.10)
    clock.advance(0.2)
    assert observe(m, 0.80) is HARD  # back above hard_exit: the calm period is broken
    clock.advance(0.1)
    assert observe(m, 0.10) is HARD
    clock.advance(0.2)
    assert observe(m, 0.10) is HARD
    clock.advance(0.05)
    assert observe(m, 0.10) is OK


def test_flapping_around_one_mark_publishes_once(clock: ManualClock) -> None:
    m = monitor(clock)
    for i in range(100):
        observe(m, 0.71 if i % 2 else 0.69)
        clock.advance(0.001)
    assert m.transitions == 1
    assert m.level is SOFT


@pytest.mark.parametrize(
    "kwargs",
    [
        {"soft_enter": 0.5, "soft_exit": 0.6},
        {"hard_enter": 0.8, "hard_exit": 0.85},
        {"soft_enter": 0.95},
        {"hard_enter": 1.5},
        {"dwell_s": -1.0},
    ],
)
def test_bad_watermarks_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(UsageError):
        Watermarks(**kwargs)


def reference_levels(
    marks: Watermarks, steps: list[tuple[float, float]]
) -> list[BackpressureLevel]:
    """Recompute the level after each step from the whole history (no incremental state)."""
    levels: list[BackpressureLevel] = []
    level, t, history = OK, 0.0, []  # history: (time, ratio) since the level was entered
    for dt, ratio in steps:
        t += dt
        history.append((t, ratio))
        target = marks.target(level, ratio)
        if LEVEL_SEVERITY[target] > LEVEL_SEVERITY[level]:
            level, history = target, []
        elif target is not level:
            # Calm run: the longest suffix of readings that all ask for a lower level.
            start = t
            for when, r in reversed(history):
                if LEVEL_SEVERITY[marks.target(level, r)] >= LEVEL_SEVERITY[level]:
                    break
                start = when
            if t - start >= marks.dwell_s:
                level, history = target, []
        levels.append(level)
    return levels


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0.0, 0.2, allow_nan=False), st.sampled_from([0.0, 0.3, 0.55, 0.72, 0.8, 0.95])
        ),
        max_size=60,
    )
)
def test_monitor_matches_reference(steps: list[tuple[float, float]]) -> None:
    clock = ManualClock(0.0)
    m = monitor(clock, dwell_s=0.1)
    got = []
    for dt, ratio in steps:
        clock.advance(dt)
        got.append(observe(m, ratio))
    assert got == reference_levels(m.watermarks, steps)
    # Only changes are queued, each a different level from the one before.
    queued = [e.level for e in m._pending]
    assert all(a != b for a, b in zip([OK, *queued], queued, strict=False))
    assert len(queued) == m.transitions


async def test_events_are_published_in_order_with_depth() -> None:
    publisher = RecordingPublisher()
    m = WatermarkMonitor(publisher, coordinator_id="store-1", heartbeat_s=None)
    await m.start()
    m.observe(800, 1000)
    m.observe(950, 1000)
    assert await m.aclose() == 0
    assert publisher.levels == ["soft", "hard"]
    first = publisher.events[0]
    assert (first.coordinator_id, first.queue_size, first.capacity, first.source) == (
        "store-1",
        800,
        1000,
        "store",
    )


async def test_quiet_queue_still_deescalates_after_dwell() -> None:
    publisher = RecordingPublisher()
    m = WatermarkMonitor(
        publisher, coordinator_id="s", watermarks=Watermarks(dwell_s=0.01), heartbeat_s=None
    )
    await m.start()
    m.observe(95, 100)
    m.observe(0, 100)  # then nothing more is observed
    await publisher.wait_until(lambda p: p.levels == ["hard", "ok"])
    await m.aclose()


async def test_failed_publishes_are_retried_in_order() -> None:
    publisher = RecordingPublisher(fail_first=3)
    m = WatermarkMonitor(
        publisher, coordinator_id="s", watermarks=Watermarks(dwell_s=0.0), heartbeat_s=None
    )
    await m.start()
    for ratio in (0.8, 0.95, 0.1, 0.8):
        m.observe(round(ratio * 100), 100)
    assert await m.aclose() == 0
    assert publisher.levels == ["soft", "hard", "ok", "soft"]


async def test_heartbeat_repeats_the_current_level() -> None:
    publisher = RecordingPublisher()
    m = WatermarkMonitor(publisher, coordinator_id="s", heartbeat_s=0.01)
    await m.start()
    m.observe(80, 100)
    await publisher.wait_until(lambda p: len(p.events) >= 4)
    await m.aclose()
    assert set(publisher.levels) == {"soft"}
    assert [e.ts for e in publisher.events] == sorted(e.ts for e in publisher.events)


async def test_no_heartbeat_before_the_first_observation() -> None:
    publisher = RecordingPublisher()
    m = WatermarkMonitor(publisher, coordinator_id="s", heartbeat_s=0.001)
    await m.start()
    await asyncio.sleep(0.02)
    await m.aclose()
    assert publisher.events == []


async def test_close_without_start_still_flushes() -> None:
    publisher = RecordingPublisher()
    m = WatermarkMonitor(publisher, coordinator_id="s", heartbeat_s=None)
    m.observe(99, 100)
    assert await m.aclose() == 0
    assert publisher.levels == ["hard"]


async def test_close_reports_what_could_not_be_published() -> None:
    publisher = RecordingPublisher(fail_first=10**9)
    m = WatermarkMonitor(publisher, coordinator_id="s", heartbeat_s=None)
    await m.start()
    m.observe(99, 100)
    assert await m.aclose(timeout_s=0.05) == 1
