"""FeedbackHandler: policy, ordering, most severe level, expiry, fallback, summary."""

from __future__ import annotations

import math
from typing import Any

import pytest
from feedback_helpers import ManualClock, feedback
from hypothesis import given, settings
from hypothesis import strategies as st

from market_data_pipeline.bus import InMemoryBus
from market_data_pipeline.core import LEVEL_SEVERITY, BackpressureLevel, RateAdjustment
from market_data_pipeline.errors import UsageError
from market_data_pipeline.flow.feedback import FeedbackHandler, ScalePolicy
from market_data_pipeline.flow.rate_gate import RateGate


def scales(gates: dict[str, RateGate]) -> dict[str, float]:
    return {name: gate.scale for name, gate in gates.items()}


def level_of(h: FeedbackHandler) -> BackpressureLevel:
    """The handler's level now: read through a call, as it changes while the test awaits."""
    return h.level


def sent_now() -> float:
    """A wall clock behind every event ts used here: each event arrives the moment it is sent.

    Handlers on this clock accept any skew (``NO_SKEW_LIMIT``); the tolerance has its own tests.
    """
    return 0.0


NO_SKEW_LIMIT = math.inf


def handler(gates: dict[str, RateGate], clock: ManualClock, **kw: Any) -> FeedbackHandler:
    kw.setdefault("max_skew_s", NO_SKEW_LIMIT)
    return FeedbackHandler(gates, clock=clock, wall_clock=sent_now, **kw)


async def test_default_policy_scales(gates: dict[str, RateGate], clock: ManualClock) -> None:
    h = handler(gates, clock)
    assert await h.handle(feedback("s1", "soft", 1.0)) == "applied"
    assert scales(gates) == {"ibkr": 0.5, "synthetic": 0.5}
    assert gates["ibkr"].level is BackpressureLevel.soft
    assert await h.handle(feedback("s1", "hard", 2.0)) == "applied"
    assert scales(gates) == {"ibkr": 0.0, "synthetic": 0.0}
    assert await h.handle(feedback("s1", "ok", 3.0)) == "applied"
    assert scales(gates) == {"ibkr": 1.0, "synthetic": 1.0}


async def test_per_provider_override(gates: dict[str, RateGate], clock: ManualClock) -> None:
    policy = ScalePolicy(soft=0.4, overrides={"ibkr": {"soft": 0.8, "hard": 0.1}})
    h = handler(gates, clock, policy=policy)
    await h.handle(feedback("s1", "soft", 1.0))
    assert scales(gates) == {"ibkr": 0.8, "synthetic": 0.4}
    await h.handle(feedback("s1", "hard", 2.0))
    assert scales(gates) == {"ibkr": 0.1, "synthetic": 0.0}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"soft": 1.5},
        {"hard": -0.1},
        {"overrides": {"x": {"critical": 0.5}}},
        {"overrides": {"x": {"ok": 2.0}}},
    ],
)
def test_bad_policy_is_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        ScalePolicy(**kwargs)


def test_bad_handler_options_are_rejected(gates: dict[str, RateGate]) -> None:
    with pytest.raises(UsageError):
        FeedbackHandler(gates, fallback="panic")  # type: ignore[arg-type]  # the check under test
    with pytest.raises(UsageError):
        FeedbackHandler(gates, stale_after_s=0)


async def test_older_and_repeated_events_are_ignored(
    gates: dict[str, RateGate], clock: ManualClock
) -> None:
    h = handler(gates, clock)
    assert await h.handle(feedback("s1", "hard", 10.0)) == "applied"
    assert await h.handle(feedback("s1", "ok", 9.0)) == "stale"
    assert await h.handle(feedback("s1", "hard", 10.0)) == "duplicate"
    assert await h.handle(feedback("s1", "ok", 10.0)) == "stale"
    assert scales(gates)["ibkr"] == 0.0
    assert await h.handle(feedback("s1", "hard", 11.0)) == "unchanged"  # a heartbeat
    assert gates["ibkr"].adjustments == 1


async def test_invalid_input_is_counted_not_applied(
    gates: dict[str, RateGate], clock: ManualClock
) -> None:
    h = handler(gates, clock)
    assert await h.handle({"level": "hard"}) == "invalid"
    assert await h.handle(feedback("s1", "hard", float("nan"))) == "invalid"
    assert scales(gates)["ibkr"] == 1.0


async def test_most_severe_coordinator_wins(gates: dict[str, RateGate], clock: ManualClock) -> None:
    h = handler(gates, clock)
    await h.handle(feedback("s1", "soft", 1.0))
    await h.handle(feedback("s2", "hard", 1.0))
    assert level_of(h) is BackpressureLevel.hard
    assert await h.handle(feedback("s1", "ok", 2.0)) == "unchanged"
    assert scales(gates)["ibkr"] == 0.0
    await h.handle(feedback("s2", "soft", 2.0))
    assert level_of(h) is BackpressureLevel.soft
    await h.handle(feedback("s2", "ok", 3.0))
    assert level_of(h) is BackpressureLevel.ok
    assert scales(gates)["ibkr"] == 1.0


async def test_silent_coordinator_expires(gates: dict[str, RateGate], clock: ManualClock) -> None:
    h = handler(gates, clock, stale_after_s=10.0)
    await h.handle(feedback("s1", "hard", 1.0))
    await h.handle(feedback("s2", "soft", 1.0))
    clock.advance(8.0)
    await h.handle(feedback("s2", "soft", 2.0))  # s2 keeps talking, s1 goes quiet
    clock.advance(2.5)
    await h.tick()
    assert level_of(h) is BackpressureLevel.soft
    clock.advance(8.0)
    await h.tick()
    assert level_of(h) is BackpressureLevel.ok
    assert scales(gates)["ibkr"] == 1.0
    assert h.summary()["coordinators"]["s1"]["expired"] is True
    # An old event of an expired coordinator stays old; a new one revives it.
    assert await h.handle(feedback("s1", "hard", 0.5)) == "stale"
    assert await h.handle(feedback("s1", "hard", 5.0)) == "applied"
    assert level_of(h) is BackpressureLevel.hard


@pytest.mark.parametrize(("fallback", "down_scale"), [("keep", 0.5), ("ok", 1.0), ("hard", 0.0)])
async def test_fallback_while_bus_is_down(
    gates: dict[str, RateGate], clock: ManualClock, fallback: str, down_scale: float
) -> None:
    h = handler(gates, clock, fallback=fallback, stale_after_s=10.0)
    await h.handle(feedback("s1", "soft", 1.0))
    h.set_bus_connected(False)
    clock.advance(60.0)  # far past stale_after_s: with "keep" nothing may expire meanwhile
    await h.tick()
    assert scales(gates)["ibkr"] == down_scale
    h.set_bus_connected(True)
    await h.tick()
    assert scales(gates)["ibkr"] == 0.5  # a fresh window to hear from s1 again
    clock.advance(10.5)
    await h.tick()
    assert scales(gates)["ibkr"] == 1.0


async def test_summary_counts_changes_and_time(
    gates: dict[str, RateGate], clock: ManualClock
) -> None:
    h = handler(gates, clock, policy=ScalePolicy(overrides={"ibkr": {"soft": 1.0}}))
    clock.advance(1.0)
    await h.handle(feedback("s1", "soft", 1.0))
    clock.advance(2.0)
    await h.handle(feedback("s1", "hard", 2.0))
    clock.advance(3.0)
    await h.handle(feedback("s1", "hard", 3.0))
    summary = h.summary()
    assert summary["level"] == "hard"
    assert summary["outcomes"] == {"applied": 2, "unchanged": 1}
    ibkr, synthetic = summary["providers"]["ibkr"], summary["providers"]["synthetic"]
    assert ibkr["rate_changes"] == 1  # soft is full rate for ibkr
    assert synthetic["rate_changes"] == 2
    assert ibkr["seconds_at_level"] == {"ok": 1.0, "soft": 2.0, "hard": 3.0}
    assert ibkr["scale"] == 0.0


async def test_run_consumes_a_bus_until_closed(gates: dict[str, RateGate]) -> None:
    bus = InMemoryBus()
    h = FeedbackHandler(gates, wall_clock=sent_now, max_skew_s=NO_SKEW_LIMIT)
    await bus.publish(feedback("s1", "hard", 1.0))
    await bus.publish(feedback("s1", "ok", 2.0))
    await bus.publish(feedback("s1", "soft", 3.0))
    await bus.close()
    await h.run(bus)
    assert scales(gates)["ibkr"] == 0.5
    assert h.summary()["providers"]["ibkr"]["rate_changes"] == 3


LEVELS = ["ok", "soft", "hard"]
steps = st.lists(
    st.tuples(
        st.sampled_from(["s1", "s2", "s3"]),
        st.integers(0, 60),  # event ts on the sender's wall clock
        st.sampled_from(LEVELS),
        st.sampled_from([0.0, 1.0, 4.0, 6.0]),  # clock advance before the event
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(steps, st.sampled_from([-3.0, 0.0, 2.5, 30.0]))
async def test_handler_matches_reference(
    events: list[tuple[str, int, str, float]], skew: float
) -> None:
    clock = ManualClock(0.0)
    gates = {"p": RateGate("p", None)}
    h = FeedbackHandler(
        gates, stale_after_s=5.0, clock=clock, wall_clock=lambda: clock.now + skew, max_skew_s=4.0
    )
    latest: dict[str, tuple[float, str, float]] = {}  # coordinator -> (ts, level, heard_at)
    for name, ts, level, advance in events:
        clock.advance(advance)
        outcome = await h.handle(feedback(name, level, float(ts)))
        await h.tick()  # expiry is applied by the periodic check
        age = max(0.0, clock.now + skew - ts)
        newer = name not in latest or ts > latest[name][0]
        if ts - (clock.now + skew) > 4.0:
            assert outcome == "future"
        elif newer and age > 5.0:
            assert outcome == "expired"
        elif newer:
            latest[name] = (float(ts), level, clock.now - age)
        live = [lv for _, lv, heard in latest.values() if clock.now - heard <= 5.0]
        expected = max(live, key=lambda lv: LEVEL_SEVERITY[BackpressureLevel(lv)], default="ok")
        assert h.level.value == expected
        assert gates["p"].scale == {"ok": 1.0, "soft": 0.5, "hard": 0.0}[expected]


class BrokenGate:
    """A controller whose apply fails until told otherwise."""

    def __init__(self) -> None:
        self.broken = True
        self.applied: list[float] = []

    async def apply(self, adj: RateAdjustment) -> None:
        if self.broken:
            raise RuntimeError("gate is broken")
        self.applied.append(adj.scale)


async def test_a_failing_gate_does_not_stop_the_others(clock: ManualClock) -> None:
    broken, good = BrokenGate(), RateGate("good", None)
    h = FeedbackHandler(
        {"broken": broken, "good": good},
        clock=clock,
        wall_clock=sent_now,
        max_skew_s=NO_SKEW_LIMIT,
    )
    assert await h.handle(feedback("s1", "hard", 1.0)) == "applied"
    assert good.scale == 0.0 and broken.applied == []
    broken.broken = False
    await h.tick()  # retried: the failed scale was never recorded
    assert broken.applied == [0.0]


async def test_metrics_follow_the_handler(gates: dict[str, RateGate], clock: ManualClock) -> None:
    from market_data_pipeline import metrics

    def sample(name: str, **labels: str) -> float | None:
        return metrics.REGISTRY.get_sample_value(name, labels)

    before = sample("mdp_feedback_events_total", level="hard", outcome="applied") or 0.0
    h = handler(gates, clock)
    await h.handle(feedback("s1", "hard", 1.0))
    assert sample("mdp_feedback_events_total", level="hard", outcome="applied") == before + 1
    assert sample("mdp_rate_scale", provider="ibkr") == 0.0
    assert sample("mdp_backpressure_level", provider="ibkr") == 2.0


async def test_an_event_older_than_stale_after_changes_nothing(
    gates: dict[str, RateGate], clock: ManualClock
) -> None:
    wall = ManualClock(1_000_000.0)
    h = FeedbackHandler(gates, stale_after_s=10.0, clock=clock, wall_clock=wall)
    # History replayed to a new consumer group: a hard level sent a minute ago.
    assert await h.handle(feedback("s1", "hard", wall.now - 60.0)) == "expired"
    assert level_of(h) is BackpressureLevel.ok and scales(gates)["ibkr"] == 1.0
    assert h.summary()["outcomes"] == {"expired": 1}


async def test_a_level_expires_stale_after_it_was_sent(
    gates: dict[str, RateGate], clock: ManualClock
) -> None:
    wall = ManualClock(1_000_000.0)
    h = FeedbackHandler(gates, stale_after_s=10.0, clock=clock, wall_clock=wall)
    assert await h.handle(feedback("s1", "hard", wall.now - 8.0)) == "applied"
    clock.advance(1.0)
    await h.tick()
    assert level_of(h) is BackpressureLevel.hard
    clock.advance(1.5)  # 10.5 s since it was sent
    await h.tick()
    assert level_of(h) is BackpressureLevel.ok


async def test_a_sender_clock_ahead_of_ours_counts_as_age_zero(
    gates: dict[str, RateGate], clock: ManualClock
) -> None:
    wall = ManualClock(1_000_000.0)
    h = FeedbackHandler(gates, stale_after_s=10.0, clock=clock, wall_clock=wall)
    assert await h.handle(feedback("s1", "hard", wall.now + 4.0)) == "applied"  # within 5 s
    clock.advance(9.0)
    await h.tick()
    assert level_of(h) is BackpressureLevel.hard
    clock.advance(2.0)
    await h.tick()
    assert level_of(h) is BackpressureLevel.ok


async def test_an_event_from_the_future_does_not_move_the_coordinators_clock(
    gates: dict[str, RateGate], clock: ManualClock
) -> None:
    """One event dated now + 1e7 s used to pause ingest and make every later real one stale."""
    now = 1_700_000_000.0
    h = FeedbackHandler(gates, clock=clock, wall_clock=lambda: now)
    assert await h.handle(feedback("mdp-store", "hard", now + 1e7)) == "future"
    assert scales(gates) == {"ibkr": 1.0, "synthetic": 1.0}
    assert await h.handle(feedback("mdp-store", "soft", now)) == "applied"
    assert await h.handle(feedback("mdp-store", "ok", now + 1.0)) == "applied"
    assert scales(gates) == {"ibkr": 1.0, "synthetic": 1.0}
    assert h.summary()["outcomes"] == {"future": 1, "applied": 2}


async def test_clock_skew_within_the_tolerance_is_accepted(
    gates: dict[str, RateGate], clock: ManualClock
) -> None:
    now = 1_700_000_000.0
    h = FeedbackHandler(gates, clock=clock, wall_clock=lambda: now, max_skew_s=5.0)
    assert await h.handle(feedback("s1", "soft", now + 4.9)) == "applied"
    assert await h.handle(feedback("s1", "hard", now + 5.1)) == "future"
    assert scales(gates) == {"ibkr": 0.5, "synthetic": 0.5}
