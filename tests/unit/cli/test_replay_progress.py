"""The replay part of the progress line: share read, ETA and event time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from market_data_pipeline.cli.output import replay_progress

NOON_NS = 1_704_196_800 * 10**9  # 2024-01-02T12:00:00Z


def test_share_eta_and_event_minute() -> None:
    assert replay_progress(0.25, 30.0, NOON_NS + 59 * 10**9) == (
        " 25.0% ETA 1m30s  at 2024-01-02T12:00Z"
    )


def test_eta_in_seconds_and_hours() -> None:
    assert replay_progress(0.5, 12.0, None) == " 50.0% ETA 12s"
    assert replay_progress(0.1, 1_000.0, None) == " 10.0% ETA 2h30m"


def test_nothing_read_yet_and_all_read() -> None:
    assert replay_progress(0.0, 5.0, None) == "  0.0% ETA ?"
    assert replay_progress(1.0, 5.0, None) == "100.0% ETA 0s"


def test_unknown_share_shows_the_event_time_only() -> None:
    assert replay_progress(None, 5.0, NOON_NS) == "at 2024-01-02T12:00Z"
    assert replay_progress(None, 5.0, None) == ""


@given(st.floats(0.001, 0.999), st.floats(0.1, 10_000.0))
def test_eta_is_the_rest_at_the_pace_so_far(share: float, elapsed_s: float) -> None:
    shown = replay_progress(share, elapsed_s, None).split("ETA ")[1]
    expected_s = elapsed_s * (1 - share) / share
    seconds = _seconds(shown)
    # Shown rounded: to the second below an hour, to the minute above.
    assert abs(seconds - expected_s) <= (60 if expected_s >= 3600 else 1)


def _seconds(text: str) -> int:
    if "h" in text:
        hours, minutes = text.rstrip("m").split("h")
        return int(hours) * 3600 + int(minutes) * 60
    if "m" in text:
        minutes, seconds = text.rstrip("s").split("m")
        return int(minutes) * 60 + int(seconds)
    return int(text.rstrip("s"))
