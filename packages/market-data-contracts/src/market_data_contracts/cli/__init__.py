"""The contract commands; ``contracts_app`` is the typer group another CLI can mount."""

from __future__ import annotations

from .app import contracts_app, main

__all__ = ["contracts_app", "main"]
