"""The hypothesis profile of every property test: ``load_profile()`` from a directory's conftest.

Loaded by the conftests of the directories that hold property tests (unit, integration, faults),
never by ``tests/conftest.py``: the Core contract suite runs in environments that hold only its
own requirements (``[tool.mdp.contracts] extras``), without hypothesis.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

PROFILE = "mdp"


def load_profile() -> None:
    """Register and load the project's profile (idempotent)."""
    # Timing is never the property under test, and the machine running the suite may be loaded:
    # the first example of a test pays for imports and warm-up (seconds under load), which a
    # per-example deadline or the "too slow" health check would report as a failure of the code.
    settings.register_profile(
        PROFILE, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
    )
    settings.load_profile(PROFILE)
