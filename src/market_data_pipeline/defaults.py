"""Defaults shared by the settings model and light CLI paths (importing this costs nothing)."""

from __future__ import annotations

DEFAULT_SINK = "sqlite:///mdp.db"
