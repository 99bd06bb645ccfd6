"""When a checkpointed run commits: the interval bounds the wait, closed bars shorten it."""

from __future__ import annotations

import pytest

from market_data_pipeline.flow.commit_policy import COST_SHARE, MAX_GAP_S, MIN_GAP_S, CommitPolicy


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _policy(interval_s: float = 1.0) -> tuple[CommitPolicy, _Clock]:
    clock = _Clock()
    return CommitPolicy(interval_s, clock=clock), clock


@pytest.mark.parametrize(("waiting", "live"), [(False, False), (False, True), (True, False)])
def test_without_closed_bars_at_the_head_of_the_feed_only_the_interval_makes_a_commit_due(
    waiting: bool, live: bool
) -> None:
    policy, clock = _policy()
    clock.now += 0.999
    assert not policy.due(bars_waiting=waiting, live=live)
    clock.now += 0.001
    assert policy.due(bars_waiting=waiting, live=live)


def test_closed_bars_of_a_live_source_make_a_commit_due_after_the_least_gap() -> None:
    policy, clock = _policy()
    assert not policy.due(bars_waiting=True, live=True)  # the run just started: a commit now
    clock.now += MIN_GAP_S
    assert policy.due(bars_waiting=True, live=True)


def test_the_gap_after_a_commit_keeps_commits_to_their_share_of_the_time() -> None:
    policy, clock = _policy()
    started = clock.now
    clock.now += 0.015  # a commit of 15 ms
    policy.committed(started)
    gap = 0.015 / COST_SHARE
    assert policy.gap_s() == pytest.approx(gap)
    clock.now += gap * 0.99
    assert not policy.due(bars_waiting=True, live=True)
    clock.now += gap * 0.02
    assert policy.due(bars_waiting=True, live=True)


def _commit(policy: CommitPolicy, clock: _Clock, cost_s: float) -> None:
    started = clock.now
    clock.now += cost_s
    policy.committed(started)


@pytest.mark.parametrize(
    ("interval_s", "gap_s"), [(1.0, MAX_GAP_S), (MAX_GAP_S / 2, MAX_GAP_S / 2)]
)
def test_slow_commits_never_hold_closed_bars_back_past_the_cap_or_the_interval(
    interval_s: float, gap_s: float
) -> None:
    policy, clock = _policy(interval_s)
    for _ in range(3):
        _commit(policy, clock, 0.5)
    assert policy.gap_s() == gap_s
    clock.now += gap_s
    assert policy.due(bars_waiting=True, live=True)


def test_one_stalled_commit_does_not_widen_the_gap() -> None:
    policy, clock = _policy()
    for cost_s in (0.01, 0.01, 0.3):
        _commit(policy, clock, cost_s)
    assert policy.gap_s() == pytest.approx(0.01 / COST_SHARE)
