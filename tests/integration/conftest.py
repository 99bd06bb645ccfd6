"""Property tests below run under the project's hypothesis profile (tests/support)."""

from hypothesis_profile import load_profile

load_profile()
