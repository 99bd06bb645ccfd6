"""What the contract commands share: the error line, list options, the GitHub API URL."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from ..defaults import DEFAULT_GITHUB_API_URL
from ..urls import mask_urls

DEFAULT_OUT = Path("build/contracts")
# GitHub Actions sets GITHUB_API_URL in every job (GitHub Enterprise Server has its own API).
API_URL_HELP = "GitHub API base URL. \\[default: $GITHUB_API_URL, else https://api.github.com]"
console = Console(stderr=True)


def error_line(message: str) -> None:
    """Print one ``error:`` line on stderr, ``message`` literally and with URLs masked."""
    line = Text.assemble(("error:", "bold red"), " ", mask_urls(message))
    Console(stderr=True, highlight=False).print(line, soft_wrap=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``message`` as the error line and return the ``typer.Exit`` to raise."""
    error_line(message)  # literally: messages carry text from the network and from files
    return typer.Exit(code)


def github_api_url(given: str | None) -> str:
    """Return the GitHub API base URL: as given, else ``$GITHUB_API_URL``, else GitHub's."""
    return given or os.environ.get("GITHUB_API_URL") or DEFAULT_GITHUB_API_URL


def split(values: list[str] | None) -> list[str]:
    """Return the items of repeated, comma-separated options, stripped, empty ones dropped."""
    return [item.strip() for value in values or [] for item in value.split(",") if item.strip()]
