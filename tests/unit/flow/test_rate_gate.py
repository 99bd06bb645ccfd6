"""The rate gate: exact long-run rate, immediate scale changes, a real pause at 0."""

from __future__ import annotations

import asyncio
import time

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from market_data_pipeline import core
from market_data_pipeline.flow.rate_gate import RateGate, TokenBucket, burst


def _adj(provider: str, scale: float, level: str = "soft") -> core.RateAdjustment:
    return core.RateAdjustment(
        provider=provider, scale=scale, reason=core.BackpressureLevel(level), ts=time.time()
    )


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(min_value=1.0, max_value=100_000.0),
    sizes=st.lists(st.integers(min_value=1, max_value=5_000), min_size=1, max_size=200),
)
def test_bucket_grants_match_reference_rate(rate: float, sizes: list[int]) -> None:
    """A caller that waits as told gets rate * elapsed tokens, within one burst and one request."""
    now = 0.0
    bucket = TokenBucket(now)
    granted = 0
    for n in sizes:
        while (wait := bucket.take(n, rate, now)) > 0.0:
            now += wait
        granted += n
        # Reference: a continuous fluid of `rate` tokens/s plus one burst, minus what is in debt.
        assert granted <= rate * now + burst(rate) + n + 1e-6
    assert granted >= rate * now - max(sizes) - 1e-6


async def test_scale_zero_pauses_until_scale_rises() -> None:
    gate = RateGate("p", base_rate=None)
    await gate.apply(_adj("p", 0.0, "hard"))
    waiter = asyncio.create_task(gate.acquire(1))
    await asyncio.sleep(0.05)
    assert not waiter.done(), "a paused gate let a tick through"
    await gate.apply(_adj("p", 1.0, "ok"))
    await asyncio.wait_for(waiter, timeout=5)
    assert gate.ticks_passed == 1


async def test_paused_gate_wakes_on_next_tick_not_next_second() -> None:
    gate = RateGate("p", base_rate=1.0)  # one token per second
    await gate.acquire(1)  # spend the first token: the next one is ~1 s away
    await gate.apply(_adj("p", 0.0, "hard"))
    waiter = asyncio.create_task(gate.acquire(1))
    await asyncio.sleep(0.01)
    gate.base_rate = 1_000_000.0  # raising the rate while paused must not release the pause
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await gate.apply(_adj("p", 1.0, "ok"))
    await asyncio.wait_for(waiter, timeout=5)


async def test_adjustment_for_another_provider_is_refused() -> None:
    gate = RateGate("alpha", base_rate=100.0)
    with pytest.raises(ValueError, match="beta"):
        await gate.apply(_adj("beta", 0.5))
    assert gate.scale == 1.0


async def test_apply_records_scale_level_and_change_count() -> None:
    gate = RateGate("p", base_rate=100.0)
    await gate.apply(_adj("p", 0.5, "soft"))
    await gate.apply(_adj("p", 0.5, "soft"))
    assert gate.scale == 0.5
    assert gate.level == core.BackpressureLevel.soft
    assert gate.rate == 50.0
    assert gate.adjustments == 1


async def test_unthrottled_gate_passes_whole_frame() -> None:
    gate = RateGate("p", base_rate=None)
    frame = pl.DataFrame({"x": list(range(10_000))})
    parts = [part async for part in gate.meter(frame)]
    assert [p.height for p in parts] == [10_000]
    assert gate.ticks_passed == 10_000


async def test_throttled_gate_meters_small_slices_covering_the_frame() -> None:
    gate = RateGate("p", base_rate=100_000.0)
    frame = pl.DataFrame({"x": list(range(5_000))})
    parts = [part async for part in gate.meter(frame)]
    assert sum(p.height for p in parts) == 5_000
    assert max(p.height for p in parts) <= 1_000
    assert pl.concat(parts).equals(frame)


async def test_throttled_gate_meters_a_whole_frame_in_slices_and_yields_it_once() -> None:
    clock = [0.0]
    gate = RateGate("p", base_rate=100_000.0, clock=lambda: clock[0])
    frame = pl.DataFrame({"x": list(range(5_000))})
    waits = []
    real_acquire = gate.acquire

    async def acquire(n: int) -> None:
        waits.append(n)
        clock[0] += 1.0  # every slice's tokens are earned by then
        await real_acquire(n)

    gate.acquire = acquire  # type: ignore[method-assign]
    parts = [part async for part in gate.meter(frame, whole=True)]
    assert len(parts) == 1
    assert parts[0].equals(frame)
    assert sum(waits) == 5_000
    assert max(waits) <= 1_000
    assert gate.ticks_passed == 5_000


async def test_whole_metering_of_an_empty_frame_yields_nothing() -> None:
    gate = RateGate("p", base_rate=None)
    assert [part async for part in gate.meter(pl.DataFrame({"x": []}), whole=True)] == []


async def test_unthrottled_gate_slows_relative_to_measured_rate() -> None:
    clock = [0.0]
    gate = RateGate("p", base_rate=None, clock=lambda: clock[0])
    for _ in range(10):
        clock[0] += 0.2
        await gate.acquire(2_000)  # 10,000 ticks/s measured
    await gate.apply(_adj("p", 0.5))
    assert gate.rate == pytest.approx(5_000.0, rel=0.01)
    await gate.apply(_adj("p", 1.0, "ok"))
    assert gate.rate is None


def test_gate_is_a_core_rate_controller() -> None:
    assert isinstance(RateGate("p", 1.0), core.RateControllerProtocol)


def test_bad_rates_and_scales_are_refused() -> None:
    with pytest.raises(ValueError):
        RateGate("p", base_rate=0.0)
    with pytest.raises(ValueError):
        RateGate("p", base_rate=1.0).set_scale(1.5)
