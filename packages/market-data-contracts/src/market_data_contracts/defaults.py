"""Defaults of the contract tooling (importing this costs nothing)."""

from __future__ import annotations

# GitHub: the API base URL, and the repository_dispatch type of Core's release fan-out.
DEFAULT_GITHUB_API_URL = "https://api.github.com"
DISPATCH_EVENT_TYPE = "core-release"
